//! Key material: generating signing key pairs (aws-lc-rs), describing their public half as a JWK
//! and SPKI, and sealing the private half (PKCS#8 DER) with AES-256-GCM under a key derived
//! from the deployment's key secret.

use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};

use super::KeyAlg;
use crate::config::{StoreBackend, StoreConfig};
use crate::store::secret::{base64url, random_bytes};
use crate::store::{KeySecretError, StoreError};

/// A fresh key pair, ready to be stored.
pub(crate) struct Generated {
    pub kid: String,
    pub bits: Option<u32>,
    pub pkcs8: Vec<u8>,
    pub spki: Vec<u8>,
    /// The public JWK with `kid`, `alg` and `use`.
    pub jwk: serde_json::Value,
}

/// Generates a key pair; RSA sizes are 2048, 3072 or 4096 bits. Slow for RSA (seconds):
/// call it off the async workers.
pub(crate) fn generate(alg: KeyAlg, rsa_bits: Option<u32>) -> Result<Generated, StoreError> {
    let failed = |_| StoreError::Crypto("key generation failed");
    let (pkcs8, spki, thumb_members, bits) = match alg {
        KeyAlg::Es256 => {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(failed)?;
            let point = pair.public_key().as_ref().to_vec();
            let spki: PublicKeyX509Der = pair.public_key().as_der().map_err(failed)?;
            let (x, y) = point
                .get(1..33)
                .zip(point.get(33..65))
                .ok_or(StoreError::Crypto("unexpected P-256 public key encoding"))?;
            let members = serde_json::json!({
                "crv": "P-256", "kty": "EC", "x": base64url(x), "y": base64url(y)
            });
            let der = pair.to_pkcs8v1().map_err(failed)?;
            (der.as_ref().to_vec(), spki.as_ref().to_vec(), members, None)
        }
        KeyAlg::EdDsa => {
            let der = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).map_err(failed)?;
            let pair = Ed25519KeyPair::from_pkcs8(der.as_ref())
                .map_err(|_| StoreError::Crypto("key generation failed"))?;
            let spki: PublicKeyX509Der = pair.public_key().as_der().map_err(failed)?;
            let members = serde_json::json!({
                "crv": "Ed25519", "kty": "OKP", "x": base64url(pair.public_key().as_ref())
            });
            (der.as_ref().to_vec(), spki.as_ref().to_vec(), members, None)
        }
        KeyAlg::Rs256 => {
            let bits = rsa_bits.unwrap_or(2048);
            let size = match bits {
                2048 => KeySize::Rsa2048,
                3072 => KeySize::Rsa3072,
                4096 => KeySize::Rsa4096,
                _ => {
                    return Err(StoreError::invalid(
                        "bits",
                        "RSA keys are 2048, 3072 or 4096 bits",
                    ));
                }
            };
            let pair = RsaKeyPair::generate(size).map_err(failed)?;
            let public = pair.public_key();
            let spki: PublicKeyX509Der = public.as_der().map_err(failed)?;
            let members = serde_json::json!({
                "e": base64url(public.exponent().big_endian_without_leading_zero()),
                "kty": "RSA",
                "n": base64url(public.modulus().big_endian_without_leading_zero()),
            });
            let der: Pkcs8V1Der = pair.as_der().map_err(failed)?;
            (
                der.as_ref().to_vec(),
                spki.as_ref().to_vec(),
                members,
                Some(bits),
            )
        }
    };
    if alg != KeyAlg::Rs256 && rsa_bits.is_some() {
        return Err(StoreError::invalid("bits", "only RS256 keys have a size"));
    }
    let kid = thumbprint(&thumb_members);
    let mut jwk = thumb_members;
    if let Some(map) = jwk.as_object_mut() {
        map.insert("kid".into(), kid.clone().into());
        map.insert("alg".into(), alg.as_str().into());
        map.insert("use".into(), "sig".into());
    }
    Ok(Generated {
        kid,
        bits,
        pkcs8,
        spki,
        jwk,
    })
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members, sorted, without whitespace
/// (`serde_json` objects are sorted maps and compact by default).
fn thumbprint(required_members: &serde_json::Value) -> String {
    let canonical = required_members.to_string();
    base64url(digest(&SHA256, canonical.as_bytes()).as_ref())
}

/// Encrypts and decrypts private keys at rest.
pub(crate) struct Sealer {
    key: LessSafeKey,
}

const SEAL_VERSION: u8 = 1;
const HKDF_SALT: &[u8] = b"authgate key encryption";
const HKDF_INFO: &[u8] = b"AES-256-GCM v1";

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl Sealer {
    pub(crate) fn from_secret(secret: &[u8]) -> Result<Sealer, StoreError> {
        let failed = |_| StoreError::Crypto("key derivation failed");
        let mut key = [0u8; 32];
        Salt::new(HKDF_SHA256, HKDF_SALT)
            .extract(secret)
            .expand(&[HKDF_INFO], Len(key.len()))
            .map_err(failed)?
            .fill(&mut key)
            .map_err(failed)?;
        let key = UnboundKey::new(&AES_256_GCM, &key).map_err(failed)?;
        Ok(Sealer {
            key: LessSafeKey::new(key),
        })
    }

    /// `version ‖ nonce ‖ ciphertext ‖ tag`; `context` (e.g. the kid) is authenticated, so a
    /// sealed value copied to another row does not open.
    pub(crate) fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context),
                &mut in_out,
            )
            .map_err(|_| StoreError::Crypto("encryption failed"))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(SEAL_VERSION);
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    pub(crate) fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let wrong = || StoreError::KeySecret(KeySecretError::SealedKeyDoesNotOpen);
        let (version, rest) = sealed
            .split_first()
            .ok_or(StoreError::Crypto("empty sealed value"))?;
        if *version != SEAL_VERSION || rest.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| StoreError::Crypto("nonce"))?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(context), &mut in_out)
            .map_err(|_| wrong())?;
        Ok(plaintext.to_vec())
    }
}

/// The key secret: from the environment variable the config names, or (SQLite only) from a
/// file generated on first start. PostgreSQL without the variable is an error: instances of a
/// cluster must share one secret, and a file on one host cannot be that.
pub(crate) fn load_secret(config: &StoreConfig) -> Result<Vec<u8>, StoreError> {
    let env = &config.key_secret_env;
    match std::env::var(env) {
        Ok(value) if !value.trim().is_empty() => {
            let value = value.trim();
            if value.len() < 32 {
                return Err(StoreError::KeySecret(KeySecretError::TooShort {
                    env: env.clone(),
                }));
            }
            Ok(value.as_bytes().to_vec())
        }
        _ => match &config.backend {
            StoreBackend::Sqlite { .. } => secret_file(&config.key_secret_file),
            StoreBackend::Postgres { .. } => {
                Err(StoreError::KeySecret(KeySecretError::UnsetForCluster {
                    env: env.clone(),
                }))
            }
        },
    }
}

/// Reads the secret file, creating it (mode 0600, 256 random bits) if it does not exist.
pub(crate) fn secret_file(path: &Path) -> Result<Vec<u8>, StoreError> {
    let io = |context: &str, source| StoreError::Io {
        context: format!("{context} {}", path.display()),
        source,
    };
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io("cannot create the directory of", e))?;
    }
    let fresh = base64url(&random_bytes::<32>()?);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(format!("{fresh}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| io("cannot write the key secret to", e))?;
            tracing::info!(path = %path.display(), "generated a secret file");
            return Ok(fresh.into_bytes());
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io("cannot create the key secret", e)),
    }
    let mut file = std::fs::File::open(path).map_err(|e| io("cannot read the key secret", e))?;
    let mode = file
        .metadata()
        .map_err(|e| io("cannot read the key secret", e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(StoreError::KeySecret(KeySecretError::FileExposed {
            path: path.to_path_buf(),
            mode,
        }));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| io("cannot read the key secret", e))?;
    let text = text.trim();
    if text.len() < 32 {
        return Err(StoreError::KeySecret(KeySecretError::FileTooShort {
            path: path.to_path_buf(),
        }));
    }
    Ok(text.as_bytes().to_vec())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_secret_and_context() {
        let sealer = Sealer::from_secret(b"0123456789abcdef0123456789abcdef").unwrap();
        let sealed = sealer.seal(b"kid-1", b"private").unwrap();
        assert_eq!(sealer.open(b"kid-1", &sealed).unwrap(), b"private");
        assert!(sealer.open(b"kid-2", &sealed).is_err());
        let other = Sealer::from_secret(b"another secret, also 32 bytes long").unwrap();
        assert!(other.open(b"kid-1", &sealed).is_err());
    }

    #[test]
    fn every_algorithm_generates_a_jwk_with_a_thumbprint_kid() {
        for (alg, kty) in [
            (KeyAlg::Es256, "EC"),
            (KeyAlg::EdDsa, "OKP"),
            (KeyAlg::Rs256, "RSA"),
        ] {
            let key = generate(alg, None).unwrap();
            assert_eq!(key.jwk["kty"], kty);
            assert_eq!(key.jwk["kid"], key.kid.as_str());
            assert_eq!(key.jwk["alg"], alg.as_str());
            assert_eq!(key.kid.len(), 43);
            assert!(!key.pkcs8.is_empty() && !key.spki.is_empty());
        }
        assert_eq!(generate(KeyAlg::Rs256, None).unwrap().bits, Some(2048));
        assert!(generate(KeyAlg::Rs256, Some(1024)).is_err());
        assert!(generate(KeyAlg::Es256, Some(2048)).is_err());
    }

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 7638 §3.1.
        let members = serde_json::json!({
            "e": "AQAB",
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        });
        assert_eq!(
            thumbprint(&members),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
