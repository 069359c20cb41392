//! The provider's ID token (OpenID Connect Core §3.1.3.7): `alg` from the allow-list (never
//! `none` or HMAC: neither parses into an allowed algorithm), the signature by a key of the
//! provider's JWKS bound to that algorithm, `iss`, `aud` (our client id), `azp`, `exp`, `iat`
//! and the `nonce` of this sign-in.

use jsonwebtoken::{Header, Validation};
use serde_json::{Map, Value};

use crate::authn::keyset::KeySet;
use crate::config::ProviderConfig;

/// Clock skew tolerated on `exp`/`iat`/`nbf`.
const LEEWAY: u64 = 60;

/// Why an ID token was refused (logged; the person sees "sign-in failed").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// Not a compact JWS.
    #[error("the ID token is not a JWS")]
    Malformed,
    /// `alg` not allowed, or not the key's.
    #[error("the ID token's alg is not allowed")]
    Algorithm,
    /// `crit` names extensions.
    #[error("the ID token names critical extensions")]
    Critical,
    /// No key of the provider's JWKS.
    #[error("the ID token's key is unknown to the provider's JWKS")]
    UnknownKey,
    /// Signature, `iss`, `aud`, `exp`, `iat`, `nbf` or `sub`.
    #[error("the ID token does not verify: {0}")]
    Invalid(String),
    /// `azp` missing (several audiences) or not us.
    #[error("the ID token's azp is not our client id")]
    AuthorizedParty,
    /// Not this sign-in's `nonce`.
    #[error("the ID token's nonce is not this sign-in's")]
    Nonce,
}

/// The token's header, checked before anything reads its payload: `alg` from the allow-list
/// (`none` and HMAC never parse into one), no `crit`. The caller loads the key its `kid` names,
/// then [`verify`]s with it.
pub fn header(token: &str, config: &ProviderConfig) -> Result<Header, IdTokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Malformed)?;
    if !config.algorithms.contains(&header.alg) {
        return Err(IdTokenError::Algorithm);
    }
    if header.crit.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(IdTokenError::Critical);
    }
    Ok(header)
}

/// Verifies `token` (whose [`header`] was checked) against the provider's keys; its claims.
pub fn verify(
    token: &str,
    header: Header,
    keys: &KeySet,
    config: &ProviderConfig,
    nonce: &str,
) -> Result<Map<String, Value>, IdTokenError> {
    // No kid: acceptable when the provider publishes exactly one key (some do).
    let kid = match header.kid {
        Some(kid) => kid,
        None => match keys.kids(&config.issuer).as_slice() {
            [only] => only.clone(),
            _ => return Err(IdTokenError::UnknownKey),
        },
    };
    let key = keys
        .get(&config.issuer, &kid)
        .ok_or(IdTokenError::UnknownKey)?;
    if key.alg != header.alg {
        return Err(IdTokenError::Algorithm);
    }
    let mut validation = Validation::new(header.alg);
    validation.leeway = LEEWAY;
    validation.validate_nbf = true;
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.client_id]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
        .map_err(|error| IdTokenError::Invalid(error.to_string()))?;
    let claims = data.claims;
    // Core §3.1.3.7 items 4–5: several audiences need azp; an azp must be us.
    let audiences = match claims.get("aud") {
        Some(Value::Array(list)) => list.len(),
        _ => 1,
    };
    match claims.get("azp").and_then(Value::as_str) {
        Some(azp) if azp != config.client_id => return Err(IdTokenError::AuthorizedParty),
        None if audiences > 1 => return Err(IdTokenError::AuthorizedParty),
        _ => {}
    }
    if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
        return Err(IdTokenError::Nonce);
    }
    if !matches!(claims.get("sub"), Some(Value::String(s)) if !s.is_empty() && s.len() <= 255) {
        return Err(IdTokenError::Invalid(
            "sub is not a string of 1 to 255 characters".into(),
        ));
    }
    Ok(claims)
}
