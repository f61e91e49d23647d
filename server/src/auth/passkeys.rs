//! Passkeys' rules: this site as a WebAuthn relying party, and what the server reads from a
//! browser's answer before handing it to webauthn-rs (which checks origin, challenge,
//! signature, user verification and the signature counter).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use webauthn_rs::prelude::{CreationChallengeResponse, Url, Webauthn, WebauthnBuilder};
use webauthn_rs_proto::ResidentKeyRequirement;

/// The relying party of `public_url`: its id the URL's host, its origin the URL's origin.
/// `Err` says why there is none: an IP address cannot be a relying party id, so a site
/// reached by its IP address has no passkeys.
pub fn relying_party(public_url: &str) -> Result<Webauthn, String> {
    let url = Url::parse(public_url).map_err(|e| format!("PUBLIC_URL is not a URL: {e}"))?;
    let host = url
        .domain()
        .ok_or("passkeys need PUBLIC_URL with a host name (an IP address cannot be a WebAuthn relying party id)")?
        .to_string();
    WebauthnBuilder::new(&host, &url)
        .and_then(|builder| builder.rp_name(&host).build())
        .map_err(|e| format!("cannot be a WebAuthn relying party: {e}"))
}

/// Registration options that ask for a discoverable credential (a passkey that names its
/// person, so sign-in needs no email): webauthn-rs asks for none by default.
pub fn require_resident_key(options: &mut CreationChallengeResponse) {
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(ResidentKeyRequirement::Required);
        selection.require_resident_key = true;
    }
}

/// A challenge as the ceremonies table keys it: base64url without padding.
pub fn challenge_key(challenge: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(challenge)
}

/// The challenge a browser's answer claims to answer (from its `clientDataJSON`), to find
/// the ceremony by; webauthn-rs then checks it against the ceremony's own. `None` when
/// there is none to read.
pub fn claimed_challenge(client_data_json: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ClientData {
        challenge: String,
    }
    let data: ClientData = serde_json::from_slice(client_data_json).ok()?;
    let bytes = URL_SAFE_NO_PAD
        .decode(data.challenge.trim_end_matches('='))
        .ok()?;
    Some(challenge_key(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_public_url_s_host() {
        let rp = relying_party("http://localhost:3000").unwrap();
        let (options, _) = rp
            .start_passkey_registration(uuid::Uuid::new_v4(), "ada@example.com", "Ada", None)
            .unwrap();
        assert_eq!(options.public_key.rp.id, "localhost");
        assert!(relying_party("http://127.0.0.1:3000").is_err());
        assert!(relying_party("https://auth.example.com").is_ok());
    }

    #[test]
    fn registration_asks_for_a_discoverable_credential_verified_by_the_person() {
        let rp = relying_party("https://auth.example.com").unwrap();
        let (mut options, _) = rp
            .start_passkey_registration(uuid::Uuid::new_v4(), "ada@example.com", "Ada", None)
            .unwrap();
        require_resident_key(&mut options);
        let json = serde_json::to_value(&options).unwrap();
        let selection = &json["publicKey"]["authenticatorSelection"];
        assert_eq!(selection["residentKey"], "required");
        assert_eq!(selection["requireResidentKey"], true);
        assert_eq!(selection["userVerification"], "required");
    }

    #[test]
    fn the_claimed_challenge_is_read_from_client_data() {
        let data =
            br#"{"type":"webauthn.get","challenge":"AQIDBA","origin":"http://localhost:3000"}"#;
        assert_eq!(claimed_challenge(data).as_deref(), Some("AQIDBA"));
        assert_eq!(claimed_challenge(b"{}"), None);
        assert_eq!(claimed_challenge(b"not json"), None);
        assert_eq!(challenge_key(&[1, 2, 3, 4]), "AQIDBA");
    }
}
