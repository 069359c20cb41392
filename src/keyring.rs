//! The gateway's own trust state, mirrored from the store into memory for the hot path: the
//! verification keys (pending, active, retiring) in the shared [`KeySet`], the active signing
//! key per algorithm, and the revocation snapshot (jti denylist, per-user not-before). Refreshed
//! every few seconds, so a rotation or revocation made by another instance (or the CLI) takes
//! effect cluster-wide within one interval. The store stays the source of truth.
#![warn(missing_docs)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use tokio::sync::watch;

use crate::authn::keyset::{KeyError, KeySet, VerifyingKey};
use crate::authn::{Principal, Revocations, TokenDefect};
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

/// Revoked access tokens, as the verifier consults them on every request.
#[derive(Default)]
pub struct RevocationCache {
    issuer: String,
    snapshot: RwLock<Snapshot>,
    /// Unix seconds of the last successful load; 0 = never.
    loaded_at: AtomicU64,
    /// Seconds after which an unrefreshed snapshot is not trusted; 0 = always trusted.
    max_staleness: AtomicU64,
    /// Loads are numbered when they start reading the store (`Snapshot::load`).
    loads: AtomicU64,
}

#[derive(Default)]
struct Snapshot {
    /// The number of the load that read this snapshot: a load that started earlier (the
    /// periodic refresh racing a reload right after a revocation) may finish later, and must
    /// not put back what it read before the revocation committed.
    load: u64,
    jtis: HashSet<String>,
    /// user id → not-before (Unix seconds).
    not_before: HashMap<String, u64>,
    /// user id → current (group, roles), for users whose group or roles changed.
    identities: HashMap<String, (String, Vec<String>)>,
}

impl Revocations for RevocationCache {
    fn is_stale(&self, principal: &Principal) -> bool {
        let max = self.max_staleness.load(Ordering::Relaxed);
        let loaded = self.loaded_at.load(Ordering::Relaxed);
        principal.issuer == self.issuer
            && max > 0
            && loaded > 0
            && jsonwebtoken::get_current_timestamp().saturating_sub(loaded) > max
    }

    fn is_revoked(&self, principal: &Principal) -> bool {
        // Denylist and not-before are about our own tokens and our own users.
        if principal.issuer != self.issuer {
            return false;
        }
        let Ok(snapshot) = self.snapshot.read() else {
            return true; // a poisoned lock fails closed
        };
        if principal
            .jti
            .as_ref()
            .is_some_and(|jti| snapshot.jtis.contains(jti))
        {
            return true;
        }
        match snapshot.not_before.get(&principal.user_id) {
            // `<=`: whole seconds, so a token from the very second of the revocation is refused too.
            Some(not_before) => principal.issued_at.is_none_or(|iat| iat <= *not_before),
            None => false,
        }
    }

    fn current(&self, principal: &Principal) -> Result<Option<Principal>, TokenDefect> {
        if principal.issuer != self.issuer {
            return Ok(None);
        }
        let Ok(snapshot) = self.snapshot.read() else {
            return Err(TokenDefect::Uncheckable); // poisoned: fail closed
        };
        // A token-exchange token acts for its admin only while they are one.
        if let Some(actor) = &principal.actor {
            if snapshot
                .identities
                .get(actor)
                .is_some_and(|(_, roles)| !roles.iter().any(|r| r == crate::authn::ADMIN_ROLE))
            {
                return Err(TokenDefect::ActorNoLongerAdmin);
            }
            if snapshot
                .not_before
                .get(actor)
                .is_some_and(|nb| principal.issued_at.is_none_or(|iat| iat <= *nb))
            {
                return Err(TokenDefect::ActorSignedOut);
            }
        }
        Ok(snapshot
            .identities
            .get(&principal.user_id)
            .map(|(group, roles)| Principal {
                group_id: Some(group.clone()),
                roles: roles.clone(),
                ..principal.clone()
            }))
    }
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
            revocations: Arc::new(RevocationCache {
                issuer: issuer.to_owned(),
                snapshot: RwLock::default(),
                loaded_at: AtomicU64::new(0),
                max_staleness: AtomicU64::new(0),
                loads: AtomicU64::new(0),
            }),
            stats: crate::authn::KeySetCounters::default(),
        }
    }

    /// Own tokens are refused (503) once revocations could not be reloaded for `max`
    /// (`auth.max_staleness`); zero: never.
    pub fn set_max_staleness(&self, max: Duration) {
        self.revocations
            .max_staleness
            .store(max.as_secs(), Ordering::Relaxed);
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
        let load = self.revocations.loads.fetch_add(1, Ordering::SeqCst) + 1;
        let revoked = self.store.revocations(now).await?;
        let snapshot = Snapshot {
            load,
            jtis: revoked
                .denied_jtis
                .into_iter()
                .map(|(jti, _)| jti)
                .collect(),
            not_before: revoked
                .not_before
                .into_iter()
                .map(|(user, at)| (user.to_string(), u64::try_from(at).unwrap_or(0)))
                .collect(),
            identities: revoked
                .identities
                .into_iter()
                .map(|c| (c.user_id.to_string(), (c.group_id.to_string(), c.roles)))
                .collect(),
        };
        if let Ok(mut current) = self.revocations.snapshot.write()
            && current.load < load
        {
            *current = snapshot;
        }
        self.revocations
            .loaded_at
            .store(u64::try_from(now).unwrap_or(0), Ordering::Relaxed);
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(issuer: &str) -> Principal {
        Principal {
            issuer: issuer.into(),
            subject: "7".into(),
            user_id: "7".into(),
            group_id: None,
            roles: vec![],
            scopes: vec![],
            client_id: None,
            audiences: vec![],
            jti: Some("j".into()),
            key_id: "k".into(),
            issued_at: Some(1),
            expires_at: u64::MAX,
            actor: None,
        }
    }

    fn cache_with(
        identities: &[(&str, &str, &[&str])],
        not_before: &[(&str, u64)],
    ) -> RevocationCache {
        let snapshot = Snapshot {
            identities: identities
                .iter()
                .map(|(user, group, roles)| {
                    let roles = roles.iter().map(|r| r.to_string()).collect();
                    (user.to_string(), (group.to_string(), roles))
                })
                .collect(),
            not_before: not_before
                .iter()
                .map(|(u, t)| (u.to_string(), *t))
                .collect(),
            ..Snapshot::default()
        };
        RevocationCache {
            issuer: "https://gw".into(),
            snapshot: RwLock::new(snapshot),
            loaded_at: AtomicU64::new(0),
            max_staleness: AtomicU64::new(0),
            loads: AtomicU64::new(0),
        }
    }

    #[test]
    fn current_group_and_roles_replace_the_token_s() {
        let cache = cache_with(&[("7", "9", &["admin"])], &[]);
        let mut token = principal("https://gw");
        token.group_id = Some("3".into());
        let current = cache.current(&token).expect("usable").expect("changed");
        assert_eq!(current.group_id.as_deref(), Some("9"));
        assert_eq!(current.roles, vec!["admin".to_owned()]);
        // Unchanged users and other issuers' tokens keep their claims.
        assert_eq!(cache.current(&principal("https://idp")), Ok(None));
        let cache = cache_with(&[("8", "9", &[])], &[]);
        assert_eq!(cache.current(&principal("https://gw")), Ok(None));
    }

    #[test]
    fn a_token_exchange_token_needs_its_admin_to_still_be_one() {
        let mut token = principal("https://gw");
        token.actor = Some("1".into());
        let demoted = cache_with(&[("1", "1", &[])], &[]);
        assert!(demoted.current(&token).is_err());
        let still_admin = cache_with(&[("1", "1", &["admin"])], &[]);
        assert_eq!(still_admin.current(&token), Ok(None));
        let signed_out = cache_with(&[], &[("1", 5)]);
        assert!(signed_out.current(&token).is_err(), "issued at 1, before 5");
    }

    #[test]
    fn an_old_snapshot_is_stale_for_our_own_tokens_only() {
        let now = jsonwebtoken::get_current_timestamp();
        let cache = |loaded: u64, max: u64| RevocationCache {
            issuer: "https://gw".into(),
            snapshot: RwLock::default(),
            loaded_at: AtomicU64::new(loaded),
            max_staleness: AtomicU64::new(max),
            loads: AtomicU64::new(0),
        };
        let own = principal("https://gw");
        assert!(cache(now - 100, 60).is_stale(&own));
        assert!(!cache(now - 10, 60).is_stale(&own));
        assert!(!cache(now - 100, 0).is_stale(&own), "0 disables the bound");
        assert!(
            !cache(0, 60).is_stale(&own),
            "never loaded: not yet serving"
        );
        assert!(!cache(now - 100, 60).is_stale(&principal("https://idp")));
    }
}
