//! Input rules of the contract, reported field by field.

use std::collections::BTreeMap;
use unicode_normalization::UnicodeNormalization;

pub type FieldErrors = BTreeMap<String, String>;

pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;
pub const NAME_MAX: usize = 100;
const EMAIL_MAX: usize = 254;

/// NFKC-normalises, trims and checks an email; returns the form to store and compare.
///
/// Normalising first makes look-alikes one address (the Kelvin sign and fullwidth `ｋ` are
/// `K` and `k`, a fullwidth `＠` the separator), so they cannot be a second account. Control
/// and invisible characters are refused: they make two addresses that read the same.
pub fn email(raw: &str, errors: &mut FieldErrors) -> String {
    let email = raw.nfkc().collect::<String>().trim().to_string();
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
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || is_invisible(c));
    if !valid {
        errors.insert("email".into(), "Enter a valid email address.".into());
    }
    email
}

/// Characters that show nothing (format characters, variation selectors, tags, fillers)
/// and so let two different addresses look the same.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'                     // soft hyphen
            | '\u{034F}'               // combining grapheme joiner
            | '\u{0600}'..='\u{0605}' // Arabic number signs (format characters)
            | '\u{061C}'               // Arabic letter mark
            | '\u{06DD}' | '\u{070F}' | '\u{08E2}' // end of ayah, Syriac abbreviation mark
            | '\u{2800}'               // braille blank, shown as nothing
            | '\u{115F}' | '\u{1160}' // Hangul fillers
            | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels
            | '\u{180B}'..='\u{180F}' // Mongolian variation selectors and vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width space, joiners, direction marks
            | '\u{202A}'..='\u{202E}' // bidirectional embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{206F}' // bidirectional isolates, deprecated format characters
            | '\u{3164}'               // Hangul filler
            | '\u{FE00}'..='\u{FE0F}' // variation selectors
            | '\u{FEFF}'               // byte order mark, zero-width no-break space
            | '\u{FFA0}'               // halfwidth Hangul filler
            | '\u{FFF0}'..='\u{FFFB}' // unassigned specials, interlinear annotation
            | '\u{110BD}' | '\u{110CD}' // Kaithi number signs
            | '\u{13430}'..='\u{1343F}' // Egyptian hieroglyph format controls
            | '\u{1BCA0}'..='\u{1BCA3}' // shorthand format controls
            | '\u{1D173}'..='\u{1D17A}' // musical formatting
            | '\u{E0000}'..='\u{E0FFF}' // tags, variation selectors supplement
    )
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

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// 1–100 characters after trimming, none of them a control character (a NUL is refused
/// by PostgreSQL; line breaks and escapes would forge lines in logs and mail) or a
/// bidirectional override or isolate (which would make a name shown in an admin's list
/// read as something else). Joiners stay allowed: scripts and emoji need them.
pub fn name(raw: &str, errors: &mut FieldErrors) -> String {
    let name = raw.trim().to_string();
    let len = name.chars().count();
    if len == 0 {
        errors.insert("name".into(), "Enter your name.".into());
    } else if len > NAME_MAX {
        errors.insert("name".into(), format!("Use at most {NAME_MAX} characters."));
    } else if name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        errors.insert(
            "name".into(),
            "Use letters, spaces and punctuation only.".into(),
        );
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

    fn normalised(s: &str) -> String {
        let mut e = FieldErrors::new();
        let email = email(s, &mut e);
        assert!(e.is_empty(), "{s:?}: {e:?}");
        email
    }

    #[test]
    fn emails_are_nfkc_normalised_before_anything_else() {
        assert_eq!(normalised("\u{212A}ate@x.com"), "Kate@x.com");
        assert_eq!(normalised("\u{FF4B}ate@x.com"), "kate@x.com");
        // A fullwidth `@` becomes the separator, and an ideographic space is trimmed.
        assert_eq!(normalised("\u{3000}kate\u{FF20}x.com"), "kate@x.com");
        assert_eq!(normalised("e\u{301}lodie@x.fr"), "\u{E9}lodie@x.fr");
        assert_eq!(normalised("ﬁ@x.com"), "fi@x.com");
    }

    #[test]
    fn names_with_direction_overrides_are_refused_but_joiners_are_kept() {
        for c in ['\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}'] {
            let mut e = FieldErrors::new();
            name(&format!("Ada{c} Lovelace"), &mut e);
            assert!(e.contains_key("name"), "U+{:04X}", c as u32);
        }
        let mut e = FieldErrors::new();
        name(
            "\u{645}\u{200C}\u{62D}\u{645}\u{62F} \u{1F469}\u{200D}\u{1F4BB}",
            &mut e,
        );
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn emails_with_invisible_or_control_characters_are_refused() {
        for c in [
            '\u{0}',
            '\u{1F}',
            '\u{7F}',
            '\u{85}',
            '\u{9F}',
            '\u{AD}',
            '\u{34F}',
            '\u{115F}',
            '\u{1160}',
            '\u{180E}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{202A}',
            '\u{202E}',
            '\u{2060}',
            '\u{2064}',
            '\u{2066}',
            '\u{206F}',
            '\u{3164}',
            '\u{FE00}',
            '\u{FE0F}',
            '\u{FEFF}',
            '\u{FFA0}',
            '\u{E0000}',
            '\u{E0041}',
            '\u{E007F}',
            '\u{600}',
            '\u{2800}',
            '\u{13430}',
            '\u{1BCA0}',
        ] {
            assert!(
                !email_ok(&format!("ka{c}te@x.com")),
                "U+{:04X} in the local part",
                c as u32
            );
            assert!(
                !email_ok(&format!("kate@x{c}y.com")),
                "U+{:04X} in the domain",
                c as u32
            );
        }
    }

    #[test]
    fn names_with_control_characters_are_refused() {
        for bad in [
            "Ka\u{0}te",
            "Ka\nte",
            "Ka\tte",
            "Kate\u{1B}[31m",
            "Kate\u{7F}",
            "Ka\u{85}te",
        ] {
            let mut e = FieldErrors::new();
            name(bad, &mut e);
            assert!(e.contains_key("name"), "{bad:?}");
        }
        let mut e = FieldErrors::new();
        assert_eq!(name(" Zoë 李 ", &mut e), "Zoë 李");
        assert!(e.is_empty());
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
