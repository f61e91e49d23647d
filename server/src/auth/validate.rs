//! Input rules of the contract, reported field by field.

use std::collections::BTreeMap;

pub type FieldErrors = BTreeMap<String, String>;

pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;
pub const NAME_MAX: usize = 100;
const EMAIL_MAX: usize = 254;

/// Trims and checks an email's syntax (RFC 5321 lengths, one `@`, a dotted domain).
pub fn email(raw: &str, errors: &mut FieldErrors) -> String {
    let email = raw.trim().to_string();
    let valid = email.len() <= EMAIL_MAX
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && local.len() <= 64
                && !domain.contains('@')
                && domain.contains('.')
                && domain.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label.chars().all(|c| c.is_alphanumeric() || c == '-')
                })
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid {
        errors.insert("email".into(), "Enter a valid email address.".into());
    }
    email
}

/// 8–128 Unicode scalar values, any characters, never trimmed.
pub fn password(raw: &str, errors: &mut FieldErrors) {
    let len = raw.chars().count();
    if len < PASSWORD_MIN {
        errors.insert(
            "password".into(),
            format!("Use at least {PASSWORD_MIN} characters."),
        );
    } else if len > PASSWORD_MAX {
        errors.insert(
            "password".into(),
            format!("Use at most {PASSWORD_MAX} characters."),
        );
    }
}

/// 1–100 characters after trimming.
pub fn name(raw: &str, errors: &mut FieldErrors) -> String {
    let name = raw.trim().to_string();
    let len = name.chars().count();
    if len == 0 {
        errors.insert("name".into(), "Enter your name.".into());
    } else if len > NAME_MAX {
        errors.insert("name".into(), format!("Use at most {NAME_MAX} characters."));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email_ok(s: &str) -> bool {
        let mut e = FieldErrors::new();
        email(s, &mut e);
        e.is_empty()
    }

    #[test]
    fn emails() {
        for ok in [
            "a@b.co",
            "  Ada.Lovelace+x@Example.COM ",
            "élodie@exemple.fr",
            "a@sub.do-main.io",
        ] {
            assert!(email_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@",
            "@b.co",
            "a@b",
            "a@@b.co",
            "a b@c.co",
            "a@-b.co",
            "a@b..co",
            "a\n@b.co",
            "a@b\u{0}.co",
        ] {
            assert!(!email_ok(bad), "{bad:?}");
        }
        assert!(!email_ok(&format!("{}@b.co", "a".repeat(65))));
    }

    #[test]
    fn passwords_count_scalar_values_and_are_not_trimmed() {
        let check = |p: &str| {
            let mut e = FieldErrors::new();
            password(p, &mut e);
            e.is_empty()
        };
        assert!(check("12345678"));
        assert!(!check("1234567"));
        assert!(check("       8"));
        assert!(check("ééééééé\u{1F600}"));
        assert!(!check("ééééééé"));
        assert!(check(&"😀".repeat(128)));
        assert!(!check(&"😀".repeat(129)));
    }

    #[test]
    fn names_are_trimmed() {
        let mut e = FieldErrors::new();
        assert_eq!(name("  Ada  ", &mut e), "Ada");
        assert!(e.is_empty());
        name("   ", &mut e);
        assert!(e.contains_key("name"));
        let mut e = FieldErrors::new();
        name(&"x".repeat(101), &mut e);
        assert!(e.contains_key("name"));
    }
}
