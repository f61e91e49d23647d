//! Key material on disk: the Ed25519 signing key (`AUTH_KEY_FILE`) and the server secret
//! (`AUTH_SECRET_FILE`). Both are generated on first start with mode 0600 and survive
//! restarts, so tokens issued before a restart stay valid after it. An existing one that
//! group or others may read or write stops start-up.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use ed25519_dalek::{
    pkcs8::{DecodePrivateKey, EncodePrivateKey},
    SigningKey,
};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::{fs, path::Path};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

fn file_error(path: &Path, reason: impl ToString) -> KeyError {
    KeyError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Writes `contents` to a new file readable by its owner only, creating its folder;
/// never overwrites.
fn create_private(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| file_error(parent, e))?;
    }
    crate::files::create_private(path, contents).map_err(|e| file_error(path, e))
}

/// Refuses a key file that group or others may read or write: whoever reads it can sign
/// tokens, or derive refresh tokens, as the server.
fn check_private(path: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(|e| file_error(path, e))?
            .permissions()
            .mode();
        if mode & 0o066 != 0 {
            return Err(file_error(
                path,
                format!(
                    "readable or writable by group or others (mode {:o}); run: chmod 600 {}",
                    mode & 0o777,
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The signing key, from its PKCS#8 PEM file, generated when absent.
pub fn load_or_create_signing_key(
    path: &Path,
    rng: &mut impl RngCore,
) -> Result<SigningKey, KeyError> {
    if !path.exists() {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let key = SigningKey::from_bytes(&seed);
        let pem = key
            .to_pkcs8_pem(Default::default())
            .map_err(|e| file_error(path, e))?;
        create_private(path, pem.as_bytes())?;
        tracing::info!(path = %path.display(), "generated a new Ed25519 signing key");
    }
    check_private(path)?;
    let pem = fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    SigningKey::from_pkcs8_pem(&pem)
        .map_err(|e| file_error(path, format!("not an Ed25519 PKCS#8 PEM key: {e}")))
}

/// The server secret: exactly 32 bytes, generated when absent.
pub fn load_or_create_secret(path: &Path, rng: &mut impl RngCore) -> Result<[u8; 32], KeyError> {
    if !path.exists() {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        create_private(path, &secret)?;
        tracing::info!(path = %path.display(), "generated a new server secret");
    }
    check_private(path)?;
    let bytes = fs::read(path).map_err(|e| file_error(path, e))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| file_error(path, format!("expected 32 bytes, found {}", b.len())))
}

/// RFC 7638 JWK thumbprint of an Ed25519 public key (RFC 8037 `OKP` members, in
/// lexicographic order), base64url without padding: the `kid` of our tokens.
pub fn thumbprint(public_key: &[u8; 32]) -> String {
    let jwk = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public_key)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(jwk.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8037_thumbprint_example() {
        // RFC 8037, appendix A.3.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        assert_eq!(
            thumbprint(&x.try_into().unwrap()),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn keys_are_created_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("nested/jwt.pem");
        let secret_path = dir.path().join("secret.key");
        let mut rng = rand::rng();
        let key = load_or_create_signing_key(&key_path, &mut rng).unwrap();
        let again = load_or_create_signing_key(&key_path, &mut rng).unwrap();
        assert_eq!(key.to_bytes(), again.to_bytes());
        let secret = load_or_create_secret(&secret_path, &mut rng).unwrap();
        assert_eq!(
            load_or_create_secret(&secret_path, &mut rng).unwrap(),
            secret
        );
        assert!(fs::read_to_string(&key_path)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for path in [&key_path, &secret_path] {
                assert_eq!(
                    fs::metadata(path).unwrap().permissions().mode() & 0o777,
                    0o600
                );
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_key_file_open_to_group_or_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("jwt.pem");
        let secret_path = dir.path().join("secret.key");
        let mut rng = rand::rng();
        load_or_create_signing_key(&key_path, &mut rng).unwrap();
        load_or_create_secret(&secret_path, &mut rng).unwrap();
        for mode in [0o640, 0o604, 0o620, 0o602, 0o644, 0o666] {
            for path in [&key_path, &secret_path] {
                fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
            }
            let e = load_or_create_signing_key(&key_path, &mut rng).unwrap_err();
            assert!(
                e.to_string()
                    .contains(&format!("chmod 600 {}", key_path.display())),
                "{mode:o}: {e}"
            );
            let e = load_or_create_secret(&secret_path, &mut rng).unwrap_err();
            assert!(
                e.to_string()
                    .contains(&format!("chmod 600 {}", secret_path.display())),
                "{mode:o}: {e}"
            );
        }
        // Owner-only, read-only too, is fine.
        for path in [&key_path, &secret_path] {
            fs::set_permissions(path, fs::Permissions::from_mode(0o400)).unwrap();
        }
        load_or_create_signing_key(&key_path, &mut rng).unwrap();
        load_or_create_secret(&secret_path, &mut rng).unwrap();
    }

    #[test]
    fn a_bad_key_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.pem");
        create_private(&path, b"not a key").unwrap();
        let e = load_or_create_signing_key(&path, &mut rand::rng()).unwrap_err();
        assert!(e.to_string().contains("jwt.pem"), "{e}");
        assert!(e.to_string().contains("not an Ed25519"), "{e}");
        let secret = dir.path().join("short.key");
        create_private(&secret, &[1u8; 5]).unwrap();
        let e = load_or_create_secret(&secret, &mut rand::rng()).unwrap_err();
        assert!(e.to_string().contains("expected 32 bytes"), "{e}");
    }
}
