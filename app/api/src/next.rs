//! Where a person goes after signing in. Both sides need it: the browser after a password,
//! the server after an identity provider sends the person back.

/// Where to go after signing in: `next` when it is a path of this site, else `/account`.
/// Refuses what a browser would take to another site: `//evil.example`, `/\evil`,
/// `https://…`, and control characters that browsers strip.
pub fn safe_next(next: Option<&str>) -> String {
    const FALLBACK: &str = "/account";
    let Some(next) = next else {
        return FALLBACK.into();
    };
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\')
        && !next.contains("://");
    if ok {
        next.into()
    } else {
        FALLBACK.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_accepts_same_site_paths_only() {
        assert_eq!(safe_next(Some("/account")), "/account");
        assert_eq!(safe_next(Some("/a/b?c=d#e")), "/a/b?c=d#e");
        for bad in [
            "//evil.example",
            "/\\evil",
            "https://evil.example",
            "http:/evil",
            "evil",
            "",
            "/\t/evil.example",
            "/x?u=https://evil.example",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(Some(bad)), "/account", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/account");
    }
}
