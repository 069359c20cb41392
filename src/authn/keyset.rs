//! The cached key set: every key that may verify a token, indexed by (issuer, `kid`), each
//! bound to exactly one algorithm. A token's `iss` selects whose keys are consulted, so an
//! external issuer's key can never verify a token that claims to be ours.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};

/// A ready-to-use verification key. `DecodingKey` is parsed once, here, not per request.
pub struct VerifyingKey {
    /// The one algorithm this key verifies; a token naming another is refused.
    pub alg: Algorithm,
    /// The parsed public key (never an HMAC secret: [`VerifyingKey::new`] refuses those).
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Why a key cannot become a [`VerifyingKey`]: it would not be bound to exactly one
/// asymmetric algorithm.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// An HMAC algorithm: a published key must never double as a shared secret.
    #[error("HMAC algorithms are never accepted for verification keys")]
    Symmetric,
    /// The key is RSA/EC/EdDSA but the algorithm belongs to another family.
    #[error("the key's type does not fit algorithm {0:?}")]
    FamilyMismatch(Algorithm),
    /// The JWK's own `alg` differs from the algorithm it is being bound to.
    #[error("the JWK says alg {jwk:?} but the key is configured for {configured:?}")]
    AlgMismatch {
        /// The JWK's declared `alg`.
        jwk: String,
        /// The algorithm the configuration (or the binding rules) chose.
        configured: Algorithm,
    },
    /// The JWK's parameters do not make a public key.
    #[error("the JWK is not a usable public key: {0}")]
    BadJwk(#[source] jsonwebtoken::errors::Error),
}

impl VerifyingKey {
    /// Binds `key` to `alg`; refuses HMAC (a public key must never double as a shared secret)
    /// and keys of another family.
    pub fn new(alg: Algorithm, key: DecodingKey) -> Result<Self, KeyError> {
        if alg.family() == jsonwebtoken::AlgorithmFamily::Hmac {
            return Err(KeyError::Symmetric);
        }
        if key.family() != alg.family() {
            return Err(KeyError::FamilyMismatch(alg));
        }
        Ok(VerifyingKey { alg, key })
    }

    /// From a JWK. `DecodingKey::from_jwk` ignores the JWK's own `alg`, so it is checked here:
    /// when present it must equal the algorithm this key is bound to.
    pub fn from_jwk(jwk: &Jwk, alg: Algorithm) -> Result<Self, KeyError> {
        if let Some(declared) = jwk.common.key_algorithm
            && Algorithm::try_from(declared).ok() != Some(alg)
        {
            return Err(KeyError::AlgMismatch {
                jwk: declared.to_string(),
                configured: alg,
            });
        }
        let key = DecodingKey::from_jwk(jwk).map_err(KeyError::BadJwk)?;
        VerifyingKey::new(alg, key)
    }
}

/// Every key that may verify a token now, by issuer and `kid`: the keyring writes our own, each
/// [`super::jwks::JwksSource`] its issuer's; the verifier only reads. Lock-free reads.
#[derive(Default)]
pub struct KeySet {
    /// issuer → kid → key. Two levels so lookups borrow `&str` without building a joint key.
    issuers: DashMap<Arc<str>, DashMap<Arc<str>, Arc<VerifyingKey>>>,
    /// Counts removals and replacements of keys: while it stands still, a key that was here
    /// still is ([`KeySet::generation`]).
    changes: AtomicU64,
}

impl KeySet {
    /// The key `kid` of `issuer`, if that issuer has it.
    pub fn get(&self, issuer: &str, kid: &str) -> Option<Arc<VerifyingKey>> {
        // Clone the Arc out: no DashMap guard may outlive this call.
        self.issuers
            .get(issuer)?
            .get(kid)
            .map(|k| Arc::clone(k.value()))
    }

    /// Changes when a key is removed or replaced, never otherwise: a caller that saw a key
    /// present and reads the same generation later (read before that lookup) knows it still
    /// is, without looking again.
    pub fn generation(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// Adds (or replaces) one key of `issuer`.
    pub fn insert(&self, issuer: &str, kid: &str, key: VerifyingKey) {
        let replaced = self
            .issuers
            .entry(Arc::from(issuer))
            .or_default()
            .insert(Arc::from(kid), Arc::new(key));
        if replaced.is_some() {
            self.changed();
        }
    }

    /// Removes one key: tokens signed by it fail from now on, cached ones included.
    pub fn remove(&self, issuer: &str, kid: &str) {
        if let Some(keys) = self.issuers.get(issuer)
            && keys.remove(kid).is_some()
        {
            self.changed();
        }
    }

    /// Makes `keys` the issuer's whole set: new kids added, missing ones removed. Kids that
    /// stay keep verifying throughout (there is no moment with an empty set).
    pub fn replace_issuer(&self, issuer: &str, keys: Vec<(String, VerifyingKey)>) {
        let wanted: Vec<String> = keys.iter().map(|(kid, _)| kid.clone()).collect();
        for (kid, key) in keys {
            self.insert(issuer, &kid, key);
        }
        if let Some(current) = self.issuers.get(issuer) {
            let mut removed = false;
            current.retain(|kid, _| {
                let keep = wanted.iter().any(|w| w.as_str() == kid.as_ref());
                removed |= !keep;
                keep
            });
            if removed {
                self.changed();
            }
        }
    }

    /// The `kid`s `issuer` has now, in no particular order.
    pub fn kids(&self, issuer: &str) -> Vec<String> {
        match self.issuers.get(issuer) {
            Some(keys) => keys.iter().map(|k| k.key().to_string()).collect(),
            None => Vec::new(),
        }
    }
}
