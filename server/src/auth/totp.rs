//! The second factor's rules: authenticator-app codes (RFC 6238: SHA-1, 6 digits, 30 s,
//! one step of drift either way) and recovery codes. No database, no HTTP: the service
//! stores what these produce and enforces "accepted once" with the step they return.

use rand::RngCore;
use totp_rs::{Algorithm, Builder, Totp};

/// Bytes of an authenticator secret: 160 bits, as RFC 4226 recommends.
pub const SECRET_LEN: usize = 20;
/// Seconds a code lasts.
pub const STEP_SECS: i64 = 30;
/// How many recovery codes a person holds at a time.
pub const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code (50 random bits), shown as two groups of five.
const RECOVERY_CODE_LEN: usize = 10;
/// Crockford's base32 in lower case: no i, l, o or u, so nothing reads as something else.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A fresh authenticator secret.
pub fn new_secret(rng: &mut impl RngCore) -> [u8; SECRET_LEN] {
    let mut secret = [0u8; SECRET_LEN];
    rng.fill_bytes(&mut secret);
    secret
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<Totp, totp_rs::TotpError> {
    // A colon separates issuer and account in the URI's label: neither may hold one.
    let clean = |s: &str| s.replace(':', " ");
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECS as u64)
        .with_secret(secret.to_vec())
        .with_issuer(Some(clean(issuer)))
        .with_account_name(clean(account))
        .build()
}

/// What a person's authenticator app needs: the secret in base32 (to type it in), the
/// `otpauth://` URI, and that URI as a QR code drawn in SVG.
#[derive(Clone, Debug)]
pub struct Enrolment {
    pub secret_base32: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EnrolmentError {
    #[error("cannot describe the authenticator secret: {0}")]
    Totp(#[from] totp_rs::TotpError),
    #[error("cannot draw the QR code: {0}")]
    Qr(#[from] qrcode::types::QrError),
}

/// The enrolment of `secret` for `account` (the person's email) at `issuer` (this site).
pub fn enrolment(secret: &[u8], issuer: &str, account: &str) -> Result<Enrolment, EnrolmentError> {
    let totp = totp(secret, issuer, account)?;
    let otpauth_uri = totp.to_url()?;
    let qr = qrcode::QrCode::with_error_correction_level(&otpauth_uri, qrcode::EcLevel::M)?;
    let qr_svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(Enrolment {
        secret_base32: totp.secret().to_base32(),
        otpauth_uri,
        qr_svg,
    })
}

/// The step whose code `code` is at `now`, if it is one of the three accepted steps (the
/// current one and one either side). The caller accepts it only when that step is later
/// than the last one accepted for the person, so a code opens something once.
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let code = six_digits(code)?;
    // Only the secret, digits and step matter to the check.
    let totp = totp(secret, "x", "x").ok()?;
    let now = u64::try_from(now).ok()?;
    totp.check(&code, now)
        .and_then(|step| i64::try_from(step).ok())
}

/// The code of `secret` at `now` (what an authenticator app shows); for tests and tools.
pub fn code_at(secret: &[u8], now: i64) -> Option<String> {
    let totp = totp(secret, "x", "x").ok()?;
    Some(totp.generate(u64::try_from(now).ok()?).to_string())
}

/// `code` as six ASCII digits, spaces (people type "123 456") ignored.
fn six_digits(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// What a person typed where either kind of code is taken (turning the factor off, new
/// recovery codes): six digits are an authenticator code, anything else a recovery code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyCode {
    Totp(String),
    Recovery(String),
}

pub fn classify(code: &str) -> Option<AnyCode> {
    match six_digits(code) {
        Some(digits) => Some(AnyCode::Totp(digits)),
        None => normalise_recovery_code(code).map(AnyCode::Recovery),
    }
}

/// A fresh set of recovery codes, as shown to the person (`abcde-12345`).
pub fn new_recovery_codes(rng: &mut impl RngCore) -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; RECOVERY_CODE_LEN];
            rng.fill_bytes(&mut bytes);
            let chars: String = bytes
                .iter()
                .map(|b| RECOVERY_ALPHABET[usize::from(b & 31)] as char)
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// A typed recovery code in its stored form: lower case, without the dash or spaces, the
/// letters people confuse with digits read as the digits. `None` when it cannot be one.
pub fn normalise_recovery_code(code: &str) -> Option<String> {
    let mut out = String::with_capacity(RECOVERY_CODE_LEN);
    for c in code.chars() {
        let c = match c.to_ascii_lowercase() {
            '-' | ' ' | '\t' => continue,
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        };
        if !c.is_ascii() || !RECOVERY_ALPHABET.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.len() == RECOVERY_CODE_LEN).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 secret "12345678901234567890", 8-digit codes; the
    /// last six digits are the 6-digit code.
    #[test]
    fn codes_match_the_rfc_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(code_at(secret, time).as_deref(), Some(&eight[2..]));
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_no_further() {
        let secret = [7u8; SECRET_LEN];
        let now = 1_700_000_015; // step 56_666_667
        let step = now / STEP_SECS;
        let code = code_at(&secret, now).unwrap();
        assert_eq!(matching_step(&secret, &code, now), Some(step));
        assert_eq!(matching_step(&secret, &code, now + 30), Some(step));
        assert_eq!(matching_step(&secret, &code, now - 30), Some(step));
        assert_eq!(matching_step(&secret, &code, now + 60), None);
        assert_eq!(matching_step(&secret, &code, now - 60), None);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(matching_step(&secret, &spaced, now), Some(step));
        assert_eq!(matching_step(&[8u8; SECRET_LEN], &code, now), None);
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
    }

    #[test]
    fn the_enrolment_names_the_site_and_the_person() {
        let e = enrolment(&[1u8; SECRET_LEN], "localhost", "ada@example.com").unwrap();
        assert!(e
            .otpauth_uri
            .starts_with("otpauth://totp/localhost:ada%40example.com?"));
        assert!(e
            .otpauth_uri
            .contains(&format!("secret={}", e.secret_base32)));
        assert!(e.otpauth_uri.contains("issuer=localhost"));
        assert!(e.qr_svg.contains("<svg"));
        // A port's colon would split the label wrongly: it is replaced.
        let e = enrolment(&[1u8; SECRET_LEN], "host:3000", "a@b.c").unwrap();
        assert!(e.otpauth_uri.starts_with("otpauth://totp/host%203000:"));
    }

    #[test]
    fn recovery_codes_are_distinct_and_read_back_as_typed() {
        let codes = new_recovery_codes(&mut rand::rng());
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut seen = std::collections::HashSet::new();
        for code in &codes {
            assert_eq!(code.len(), 11);
            let stored = normalise_recovery_code(code).unwrap();
            assert!(seen.insert(stored.clone()));
            assert_eq!(
                normalise_recovery_code(&code.to_uppercase().replace('-', " ")),
                Some(stored)
            );
        }
        assert_eq!(
            normalise_recovery_code("OIL00-11111"),
            normalise_recovery_code("01100-11111")
        );
        assert_eq!(normalise_recovery_code("abcde-1234"), None);
        assert_eq!(normalise_recovery_code("abcde-1234u"), None);
        assert_eq!(normalise_recovery_code("abcdé-12345"), None);
        assert_eq!(classify("123 456"), Some(AnyCode::Totp("123456".into())));
        assert_eq!(
            classify("ABCDE-12345"),
            Some(AnyCode::Recovery("abcde12345".into()))
        );
        assert_eq!(classify("nope"), None);
    }
}
