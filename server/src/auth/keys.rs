//! Key material: the Ed25519 key file (`AUTH_KEY_FILE`, imported as the first signing
//! key), the server secret (`AUTH_SECRET_FILE`), and the sealing of signing keys under that
//! secret for the database. Both files are generated on first start with mode 0600; an
//! existing one that group or others may read or write stops start-up.

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine as _,
};
use chacha20poly1305::{aead::Aead, KeyInit, XChaCha20Poly1305, XNonce};
use ed25519_dalek::{pkcs8::DecodePrivateKey, SigningKey};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::{fs, path::Path};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    /// A sealed key that does not open: sealed under another secret, or altered.
    #[error(
        "signing key {kid} does not open with this server secret: every instance needs the \
         same AUTH_SECRET_FILE"
    )]
    Sealed { kid: String },
}

fn file_error(path: &Path, reason: impl ToString) -> KeyError {
    KeyError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Writes `contents` to a new file readable by its owner only (`files::publish_private`),
/// creating its folder; nothing when another process made the file first. Says whether
/// this call made it.
fn create_if_absent(path: &Path, contents: &[u8]) -> Result<bool, KeyError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| file_error(parent, e))?;
    }
    match crate::files::publish_private(path, contents) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(file_error(path, e)),
    }
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

/// A new random Ed25519 key.
pub fn generate(rng: &mut impl RngCore) -> SigningKey {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    SigningKey::from_bytes(&seed)
}

/// The DER of an Ed25519 private key in PKCS#8 v1 (RFC 8410, section 7) is this prefix
/// and the 32-byte seed. Version 2, which also carries the public key, is what
/// ed25519-dalek writes, and OpenSSL 3.0 and Python's `cryptography` refuse it.
const PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// `key` as a PKCS#8 v1 PEM file.
pub fn to_pem(key: &SigningKey) -> String {
    let mut der = PKCS8_V1_PREFIX.to_vec();
    der.extend_from_slice(key.as_bytes());
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(der)
    )
}

/// The signing key of a PKCS#8 PEM file (v1 or v2), generated (as v1) when absent.
pub fn load_or_create_signing_key(
    path: &Path,
    rng: &mut impl RngCore,
) -> Result<SigningKey, KeyError> {
    if !path.exists() && create_if_absent(path, to_pem(&generate(rng)).as_bytes())? {
        tracing::info!(path = %path.display(), "generated a new Ed25519 signing key");
    }
    check_private(path)?;
    let pem = fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    SigningKey::from_pkcs8_pem(&pem)
        .map_err(|e| file_error(path, format!("not an Ed25519 PKCS#8 PEM key: {e}")))
}

/// Seals secrets for the database under the server secret, so a copy of the database
/// alone opens none of them: signing keys, and people's authenticator secrets.
/// XChaCha20-Poly1305 (random 24-byte nonces are safe), its key derived from the secret for
/// one use only (its label), an id bound in as associated data so one sealed value cannot
/// pass for another.
pub struct Sealer(XChaCha20Poly1305);

impl Sealer {
    /// The sealer of signing keys (their `kid` the associated data).
    pub fn new(secret: &[u8; 32]) -> Sealer {
        Sealer::labelled(secret, b"jwt-auth: the key sealing signing keys")
    }

    /// A sealer whose key is derived from `secret` for the use `label` names.
    pub fn labelled(secret: &[u8; 32], label: &[u8]) -> Sealer {
        #[allow(clippy::expect_used)] // HMAC takes keys of any length
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(label);
        Sealer(XChaCha20Poly1305::new(&mac.finalize().into_bytes()))
    }

    /// `plain` sealed for `id`: base64url of the nonce and the ciphertext.
    pub fn seal_bytes(&self, id: &str, plain: &[u8], rng: &mut impl RngCore) -> String {
        let mut nonce = [0u8; 24];
        rng.fill_bytes(&mut nonce);
        #[allow(clippy::expect_used)] // fails only for plaintexts of gigabytes
        let sealed = self
            .0
            .encrypt(
                &XNonce::from(nonce),
                chacha20poly1305::aead::Payload {
                    msg: plain,
                    aad: id.as_bytes(),
                },
            )
            .expect("small plaintexts always seal");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// What `seal_bytes` sealed for `id`; `None` when it was sealed under another secret or
    /// for another id, or altered.
    pub fn open_bytes(&self, id: &str, sealed: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().ok()?;
        self.0
            .decrypt(
                &XNonce::from(nonce),
                chacha20poly1305::aead::Payload {
                    msg: sealed,
                    aad: id.as_bytes(),
                },
            )
            .ok()
    }

    /// `key`'s seed, sealed for `kid`.
    pub fn seal(&self, kid: &str, key: &SigningKey, rng: &mut impl RngCore) -> String {
        self.seal_bytes(kid, key.as_bytes(), rng)
    }

    /// The key `seal` sealed for `kid`.
    pub fn open(&self, kid: &str, sealed: &str) -> Result<SigningKey, KeyError> {
        let seed = self
            .open_bytes(kid, sealed)
            .ok_or_else(|| KeyError::Sealed {
                kid: kid.to_string(),
            })?;
        let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| KeyError::Sealed {
            kid: kid.to_string(),
        })?;
        Ok(SigningKey::from_bytes(&seed))
    }
}

/// The server secret: exactly 32 bytes, generated when absent.
pub fn load_or_create_secret(path: &Path, rng: &mut impl RngCore) -> Result<[u8; 32], KeyError> {
    if !path.exists() {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        // Instances started at once may race to make it: the first one's is everyone's.
        if create_if_absent(path, &secret)? {
            tracing::info!(path = %path.display(), "generated a new server secret");
        }
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

    #[test]
    fn instances_starting_at_once_share_the_secret_and_key_the_first_one_made() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let secret_path = dir.path().join("secret.key");
            let key_path = dir.path().join("jwt.pem");
            let start = std::sync::Barrier::new(8);
            let made: Vec<_> = std::thread::scope(|scope| {
                let racers: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            let mut rng = rand::rng();
                            start.wait();
                            let secret = load_or_create_secret(&secret_path, &mut rng);
                            let key = load_or_create_signing_key(&key_path, &mut rng);
                            (secret.unwrap(), key.unwrap().to_bytes())
                        })
                    })
                    .collect();
                racers.into_iter().map(|r| r.join().unwrap()).collect()
            });
            assert!(made.windows(2).all(|w| w[0] == w[1]), "one secret, one key");
            let mut names: Vec<_> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            assert_eq!(names, ["jwt.pem", "secret.key"], "no drafts left");
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
    fn key_files_are_written_as_pkcs8_v1_and_read_in_either_version() {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.pem");
        let key = load_or_create_signing_key(&path, &mut rand::rng()).unwrap();
        let pem = fs::read_to_string(&path).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(body).unwrap();
        // RFC 8410's example layout: version 0, the Ed25519 OID, the seed; no public key.
        assert_eq!(der.len(), 48);
        assert_eq!(&der[..16], &PKCS8_V1_PREFIX);
        assert_eq!(&der[16..], key.as_bytes());
        // A version 2 file, as earlier releases wrote them, still reads.
        let v2 = dir.path().join("v2.pem");
        let old = generate(&mut rand::rng());
        let v2_pem = old.to_pkcs8_pem(Default::default()).unwrap();
        assert!(create_if_absent(&v2, v2_pem.as_bytes()).unwrap());
        assert_eq!(
            load_or_create_signing_key(&v2, &mut rand::rng())
                .unwrap()
                .to_bytes(),
            old.to_bytes()
        );
    }

    /// OpenSSL (3.0 refuses version 2 files) derives the same public key from the file.
    #[test]
    fn openssl_reads_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.pem");
        let key = load_or_create_signing_key(&path, &mut rand::rng()).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&path)
            .output()
            .expect("openssl (Debian's package, which cargo xtask setup installs)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // SubjectPublicKeyInfo: a 12-byte header, then the key.
        assert_eq!(&out.stdout[12..], key.verifying_key().as_bytes());
    }

    /// Python's `cryptography` (which also refuses version 2 files) reads the key file and
    /// finds the same public key.
    #[test]
    fn python_cryptography_reads_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.pem");
        let key = load_or_create_signing_key(&path, &mut rand::rng()).unwrap();
        let script = "import sys\n\
            from cryptography.hazmat.primitives.serialization import load_pem_private_key, Encoding, PublicFormat\n\
            key = load_pem_private_key(open(sys.argv[1], 'rb').read(), password=None)\n\
            sys.stdout.write(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex())\n";
        let out = std::process::Command::new("/usr/bin/python3")
            .args(["-c", script])
            .arg(&path)
            .output()
            .expect("python3 (Debian's python3-cryptography, which cargo xtask setup installs)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let public: String = key
            .verifying_key()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(String::from_utf8_lossy(&out.stdout), public);
    }

    #[test]
    fn a_sealed_key_opens_only_with_its_secret_and_its_kid() {
        let key = generate(&mut rand::rng());
        let sealer = Sealer::new(&[1u8; 32]);
        let sealed = sealer.seal("kid-1", &key, &mut rand::rng());
        assert!(!sealed.contains(&URL_SAFE_NO_PAD.encode(key.as_bytes())));
        assert_eq!(
            sealer.open("kid-1", &sealed).unwrap().to_bytes(),
            key.to_bytes()
        );
        assert!(sealer.open("kid-2", &sealed).is_err(), "another kid");
        assert!(
            Sealer::new(&[2u8; 32]).open("kid-1", &sealed).is_err(),
            "another secret"
        );
        let mut altered = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        altered[30] ^= 1;
        assert!(sealer
            .open("kid-1", &URL_SAFE_NO_PAD.encode(altered))
            .is_err());
        assert!(sealer.open("kid-1", "short").is_err());
    }

    #[test]
    fn a_bad_key_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.pem");
        assert!(create_if_absent(&path, b"not a key").unwrap());
        let e = load_or_create_signing_key(&path, &mut rand::rng()).unwrap_err();
        assert!(e.to_string().contains("jwt.pem"), "{e}");
        assert!(e.to_string().contains("not an Ed25519"), "{e}");
        let secret = dir.path().join("short.key");
        assert!(create_if_absent(&secret, &[1u8; 5]).unwrap());
        let e = load_or_create_secret(&secret, &mut rand::rng()).unwrap_err();
        assert!(e.to_string().contains("expected 32 bytes"), "{e}");
    }
}
