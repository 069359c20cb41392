//! The gateway's own trust state, mirrored from the store into memory for the hot path: the
//! verification keys (pending, active, retiring) in the shared [`KeySet`], the active signing
//! key per algorithm, and the revocation snapshot (jti denylist, per-user not-before). Refreshed
//! every few seconds, so a rotation or revocation made by another instance (or the CLI) takes
//! effect cluster-wide within one interval. The store stays the source of truth.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use tokio::sync::watch;

mod revocations;

pub use revocations::RevocationCache;

use crate::authn::keyset::{KeyError, KeySet, VerifyingKey};
use crate::store::{AuditEvent, KeyAlg, KeyState, Store, StoreError};
use crate::tokens::SigningKey;

/// Where our public signing keys are published (RFC 8414 `jwks_uri`): [`Keyring::jwks`].
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Why the keyring could not load or hand out keys. A failed refresh keeps the previous keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// Reading keys or revocations from the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored key does not parse: the row was written by something else or altered.
    #[error("key {kid} cannot be used: {source}")]
    Key {
        /// The stored key's id.
        kid: String,
        /// What is wrong with it.
        #[source]
        source: StoredKeyError,
    },
    /// Nothing can be signed with this algorithm until a key is activated.
    #[error("there is no active {0} signing key (run `authgate keys rotate --alg {0}`)")]
    NoActiveKey(&'static str),
}

/// What is wrong with one stored key's material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoredKeyError {
    /// The stored public JWK is not a JWK.
    #[error("{0}")]
    Jwk(#[from] serde_json::Error),
    /// The public JWK cannot be bound to the key's algorithm.
    #[error("{0}")]
    Verifying(#[from] KeyError),
    /// The private key does not parse as a key of its algorithm.
    #[error("{0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

/// Our own keys in memory: writes our issuer's entries of the shared [`KeySet`], holds the
/// active signing key per algorithm, the published JWKS and PEMs, and the
/// [`RevocationCache`]. Every piece is replaced whole by [`Keyring::refresh`]; readers never
/// see a half-loaded state.
pub struct Keyring {
    store: Store,
    issuer: String,
    keys: Arc<KeySet>,
    signing: RwLock<HashMap<KeyAlg, Arc<SigningKey>>>,
    /// The published JWKS document (pending, active and retiring public keys).
    jwks: RwLock<bytes::Bytes>,
    /// Public keys as PEM (SubjectPublicKeyInfo) by `kid`, for clients that want the key itself.
    pems: RwLock<HashMap<String, Arc<str>>>,
    revocations: Arc<RevocationCache>,
    stats: crate::authn::KeySetCounters,
}

impl Keyring {
    /// An empty keyring for our `issuer` (nothing signs or verifies until the first
    /// [`Keyring::refresh`]), writing into `keys`, the set the verifier reads.
    pub fn new(store: Store, issuer: &str, keys: Arc<KeySet>) -> Self {
        Keyring {
            store,
            issuer: issuer.to_owned(),
            keys,
            signing: RwLock::new(HashMap::new()),
            jwks: RwLock::new(bytes::Bytes::from_static(b"{\"keys\":[]}")),
            pems: RwLock::default(),
            revocations: Arc::new(RevocationCache::new(issuer)),
            stats: crate::authn::KeySetCounters::default(),
        }
    }

    /// Own tokens are refused (503) once revocations could not be reloaded for `max`
    /// (`auth.max_staleness`); zero: never.
    pub fn set_max_staleness(&self, max: Duration) {
        self.revocations.set_max_staleness(max);
    }

    /// The revocation snapshot the verifier consults (shared, refreshed in place).
    pub fn revocations(&self) -> Arc<RevocationCache> {
        Arc::clone(&self.revocations)
    }

    /// The store the keyring mirrors (the source of truth for keys and revocations).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Our issuer's key-set reloads from the store, for `/metrics`.
    pub fn stats(&self) -> crate::authn::KeySetStats {
        self.stats.snapshot()
    }

    /// Our issuer (`iss` of every token we sign).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `/.well-known/jwks.json`, as of the last refresh.
    pub fn jwks(&self) -> bytes::Bytes {
        self.jwks.read().map(|j| j.clone()).unwrap_or_default()
    }

    /// The PEM public key of `kid` (a published key), as of the last refresh.
    pub fn public_pem(&self, kid: &str) -> Option<Arc<str>> {
        self.pems.read().ok()?.get(kid).cloned()
    }

    /// The active signing key for `alg`.
    pub fn signing_key(&self, alg: KeyAlg) -> Result<Arc<SigningKey>, KeyringError> {
        let keys = self
            .signing
            .read()
            .map_err(|_| KeyringError::NoActiveKey(alg.as_str()))?;
        keys.get(&alg)
            .cloned()
            .ok_or(KeyringError::NoActiveKey(alg.as_str()))
    }

    /// A store with no active key of `alg` (a fresh install) gets one, so tokens can be issued
    /// at once. Rotation afterwards is `authgate keys rotate`.
    pub async fn ensure_active(&self, alg: KeyAlg) -> Result<(), KeyringError> {
        self.ensure_active_sized(alg, None).await
    }

    /// [`Keyring::ensure_active`] with the RSA size of a generated key.
    pub async fn ensure_active_sized(
        &self,
        alg: KeyAlg,
        rsa_bits: Option<u32>,
    ) -> Result<(), KeyringError> {
        let now = crate::store::now();
        let stored = self.store.keys().await?;
        if stored
            .iter()
            .any(|k| k.alg == alg && k.state == KeyState::Active)
        {
            return Ok(());
        }
        let key = self.store.add_key(alg, rsa_bits, None, now).await?;
        self.store.activate_key(&key.kid, now).await?;
        let event = AuditEvent::new("keys.bootstrap")
            .actor("system")
            .subject(format!("key:{}", key.kid));
        self.store.audit(&event, now).await?;
        tracing::warn!(kid = %key.kid, alg = alg.as_str(), "no active signing key: generated and activated one");
        Ok(())
    }

    /// Reloads keys and revocations from the store (pending keys are promoted by
    /// `Store::maintain`).
    pub async fn refresh(&self) -> Result<(), KeyringError> {
        let now = crate::store::now();
        let stored = self.store.keys().await?;
        let mut verifying = Vec::new();
        let mut published = Vec::new();
        let mut signing = HashMap::new();
        let mut pems = HashMap::new();
        for key in &stored {
            if key.state.verifies() {
                pems.insert(key.kid.clone(), Arc::from(pem(&key.public_spki)));
                let value: serde_json::Value =
                    serde_json::from_str(&key.public_jwk).map_err(|e| bad(&key.kid, e))?;
                let jwk: Jwk =
                    serde_json::from_value(value.clone()).map_err(|e| bad(&key.kid, e))?;
                published.push(value);
                let alg = algorithm(key.alg);
                verifying.push((
                    key.kid.clone(),
                    VerifyingKey::from_jwk(&jwk, alg).map_err(|e| bad(&key.kid, e))?,
                ));
            }
            if key.state == KeyState::Active {
                let pkcs8 = self.store.key_private_pkcs8(&key.kid).await?;
                signing.insert(key.alg, Arc::new(signing_key(&key.kid, key.alg, &pkcs8)?));
            }
        }
        self.keys.replace_issuer(&self.issuer, verifying);
        let document = serde_json::json!({ "keys": published }).to_string();
        if let Ok(mut current) = self.jwks.write() {
            *current = bytes::Bytes::from(document);
        }
        if let Ok(mut current) = self.signing.write() {
            *current = signing;
        }
        if let Ok(mut current) = self.pems.write() {
            *current = pems;
        }
        self.refresh_revocations_at(now).await
    }

    /// Reloads only the revocations: after this instance revoked something, so it refuses the
    /// token at once rather than at the next periodic refresh.
    pub async fn refresh_revocations(&self) -> Result<(), KeyringError> {
        self.refresh_revocations_at(crate::store::now()).await
    }

    async fn refresh_revocations_at(&self, now: i64) -> Result<(), KeyringError> {
        Ok(self.revocations.load(&self.store, now).await?)
    }

    /// Reloads whenever another instance announces a change (PostgreSQL `LISTEN`), until
    /// `stop`. Returns at once on SQLite; reconnects after failures. The periodic refresh runs
    /// besides, so a missed announcement costs at most one interval.
    pub async fn run_listener(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let mut listener = match self.store.change_listener().await {
                Ok(Some(listener)) => listener,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, "cannot LISTEN for changes; relying on the periodic refresh");
                    tokio::select! {
                        _ = crate::shutdown::stopped(&mut stop) => return,
                        _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                    }
                }
            };
            loop {
                let announced = tokio::select! {
                    _ = crate::shutdown::stopped(&mut stop) => return,
                    announced = listener.next() => announced,
                };
                if let Err(error) = announced {
                    tracing::warn!(%error, "the change listener failed; reconnecting");
                    break;
                }
                match self.refresh().await {
                    Ok(()) => self.stats.succeeded(),
                    Err(error) => {
                        self.stats.failed();
                        tracing::warn!(%error, "reloading after a change announcement failed");
                    }
                }
            }
        }
    }

    /// Refreshes every `interval` until `stop`. A failed refresh keeps the previous state.
    pub async fn run_refresh(self: Arc<Self>, interval: Duration, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = crate::shutdown::stopped(&mut stop) => return,
                _ = tokio::time::sleep(interval) => {}
            }
            match self.refresh().await {
                Ok(()) => self.stats.succeeded(),
                Err(error) => {
                    self.stats.failed();
                    tracing::warn!(%error, "refreshing keys and revocations from the store failed; keeping the previous state");
                }
            }
        }
    }
}

/// DER SubjectPublicKeyInfo → `-----BEGIN PUBLIC KEY-----` (RFC 7468, 64-column lines).
fn pem(spki: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(spki);
    let mut text = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str("-----END PUBLIC KEY-----\n");
    text
}

fn bad(kid: &str, error: impl Into<StoredKeyError>) -> KeyringError {
    KeyringError::Key {
        kid: kid.to_owned(),
        source: error.into(),
    }
}

/// The JOSE algorithm a stored key of `alg` signs with (one per key type, fixed).
pub fn algorithm(alg: KeyAlg) -> Algorithm {
    match alg {
        KeyAlg::Es256 => Algorithm::ES256,
        KeyAlg::EdDsa => Algorithm::EdDSA,
        KeyAlg::Rs256 => Algorithm::RS256,
    }
}

/// PKCS#8 DER → signing key (via PEM, which jsonwebtoken parses for every key type).
fn signing_key(kid: &str, alg: KeyAlg, pkcs8: &[u8]) -> Result<SigningKey, KeyringError> {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(pkcs8);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let key = match alg {
        KeyAlg::Es256 => EncodingKey::from_ec_pem(pem.as_bytes()),
        KeyAlg::EdDsa => EncodingKey::from_ed_pem(pem.as_bytes()),
        KeyAlg::Rs256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .map_err(|e| bad(kid, e))?;
    Ok(SigningKey {
        kid: kid.to_owned(),
        alg: algorithm(alg),
        key,
    })
}
