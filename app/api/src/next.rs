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

/// The fragment a sign-in at an identity provider comes back with: the provider's buttons
/// put it on the `next` they send, the server's redirect after the provider keeps it, and
/// the page it lands on knows that a sign-in just happened (the redirect and the cookie it
/// set cannot tell the page, and another tab would hand it the session of the person
/// signed in before).
pub const ARRIVED: &str = "#signed-in";

/// `next` for a sign-in at a provider: [`safe_next`] with the [`ARRIVED`] fragment (left as
/// it is when it has a fragment of its own).
pub fn provider_next(next: Option<&str>) -> String {
    let next = safe_next(next);
    if next.contains('#') {
        next
    } else {
        format!("{next}{ARRIVED}")
    }
}

/// Where a sign-in in the page goes: [`safe_next`], without the [`ARRIVED`] fragment (a
/// second step after a provider's sign-in has the provider's `next`).
pub fn after_sign_in(next: Option<&str>) -> String {
    let next = safe_next(next);
    match next.strip_suffix(ARRIVED) {
        Some(path) => path.into(),
        None => next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_s_next_carries_the_arrival_fragment_and_a_page_sign_in_drops_it() {
        assert_eq!(provider_next(None), "/account#signed-in");
        assert_eq!(provider_next(Some("/admin?q=a")), "/admin?q=a#signed-in");
        assert_eq!(provider_next(Some("/a#b")), "/a#b");
        assert_eq!(provider_next(Some("//evil.example")), "/account#signed-in");
        assert_eq!(after_sign_in(Some("/admin#signed-in")), "/admin");
        assert_eq!(after_sign_in(Some("/admin")), "/admin");
        assert_eq!(after_sign_in(None), "/account");
    }

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
