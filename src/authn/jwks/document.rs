//! A key document read into keys: the JWKS format (RFC 7517) or one PEM public key, every key
//! bound to exactly one allowed algorithm (or skipped), and the `Cache-Control` lifetime of a
//! fetched document. Pure functions: no I/O, no state.

use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

use super::JwksError;
use crate::authn::keyset::VerifyingKey;

/// The `max-age` of a `Cache-Control` value, if it has one.
pub(super) fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|v| v.trim_matches('"').parse().ok())
        .map(Duration::from_secs)
}

#[derive(serde::Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

/// Every usable signing key of the document, each bound to exactly one allowed algorithm.
/// Keys that cannot be bound unambiguously are skipped (and logged), not guessed.
pub fn parse_jwks(
    bytes: &[u8],
    allowed: &[Algorithm],
) -> Result<Vec<(String, VerifyingKey)>, JwksError> {
    let document: JwksDocument = serde_json::from_slice(bytes).map_err(JwksError::Invalid)?;
    let mut keys = Vec::new();
    for value in document.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let Some(alg) = bind_algorithm(&jwk, allowed) else {
            tracing::debug!(%kid, "JWKS key skipped: no single allowed algorithm fits it");
            continue;
        };
        match VerifyingKey::from_jwk(&jwk, alg) {
            Ok(key) => keys.push((kid, key)),
            Err(error) => tracing::debug!(%kid, %error, "JWKS key skipped"),
        }
    }
    if keys.is_empty() {
        return Err(JwksError::NoKeys);
    }
    Ok(keys)
}

fn bind_algorithm(jwk: &Jwk, allowed: &[Algorithm]) -> Option<Algorithm> {
    if let Some(declared) = jwk.common.key_algorithm {
        return Algorithm::try_from(declared)
            .ok()
            .filter(|alg| allowed.contains(alg));
    }
    let fits = |alg: &Algorithm| match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => alg.family() == AlgorithmFamily::Rsa,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => *alg == Algorithm::ES256,
            EllipticCurve::P384 => *alg == Algorithm::ES384,
            _ => false,
        },
        AlgorithmParameters::OctetKeyPair(_) => *alg == Algorithm::EdDSA,
        _ => false,
    };
    let mut candidates = allowed.iter().filter(|alg| fits(alg));
    match (candidates.next(), candidates.next()) {
        (Some(alg), None) => Some(*alg),
        _ => None,
    }
}

/// The one key of a `public_key_file` issuer, bound to its single configured algorithm.
pub(super) fn key_from_pem(pem: &[u8], allowed: &[Algorithm]) -> Result<VerifyingKey, JwksError> {
    let [alg] = allowed else {
        return Err(JwksError::AmbiguousAlgorithm);
    };
    let key = match alg.family() {
        AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(pem),
        AlgorithmFamily::Ec => DecodingKey::from_ec_pem(pem),
        AlgorithmFamily::Ed => DecodingKey::from_ed_pem(pem),
        AlgorithmFamily::Hmac => return Err(JwksError::Hmac),
    }
    .map_err(JwksError::Pem)?;
    VerifyingKey::new(*alg, key).map_err(JwksError::Key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age() {
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("no-cache"), None);
    }

    #[test]
    fn keys_are_bound_to_one_algorithm() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keypair");
        let decoding = DecodingKey::from_ec_pem(pair.public_key_pem().as_bytes()).expect("key");
        let mut jwk = Jwk::from_decoding_key(&decoding, Some(Algorithm::ES256)).expect("jwk");
        jwk.common.key_id = Some("k1".into());
        let mut no_alg = jwk.clone();
        no_alg.common.key_algorithm = None;
        no_alg.common.key_id = Some("k2".into());
        let mut no_kid = jwk.clone();
        no_kid.common.key_id = None;
        let doc = serde_json::json!({"keys": [jwk, no_alg, no_kid, {"kty": "weird"}]});
        let keys = parse_jwks(doc.to_string().as_bytes(), &[Algorithm::ES256]).expect("keys");
        let kids: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kids, vec!["k1", "k2"]);
        assert!(keys.iter().all(|(_, k)| k.alg == Algorithm::ES256));
        // Declared ES256 but only RS256 allowed: skipped, so nothing usable.
        assert!(matches!(
            parse_jwks(doc.to_string().as_bytes(), &[Algorithm::RS256]),
            Err(JwksError::NoKeys)
        ));
        assert!(matches!(
            parse_jwks(b"not json", &[Algorithm::ES256]),
            Err(JwksError::Invalid(_))
        ));
    }
}
