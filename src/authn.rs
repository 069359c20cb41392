//! Bearer authentication: take the token from the request, verify it against the cached key
//! set, and produce a [`Principal`]. Every check named in the security invariants lives here,
//! in this order: algorithm allow-list (before anything else), `typ`, `crit`, issuer → key
//! lookup (key bound to one algorithm), signature, `exp` (required, numeric), `nbf` (numeric
//! when present), `iss`, `aud`, then revocation — also for cached tokens.

mod bearer;
mod cache;
mod failure;
pub mod jwks;
pub mod keyset;
pub mod opaque;

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

pub use bearer::{Authenticator, extract_token};
pub use cache::{CacheStats, VerifiedCache};
pub use failure::AuthFailure;
use keyset::KeySet;
pub use opaque::OpaqueTokens;

/// The role that makes a user an admin: may act for other users (impersonation, token
/// exchange) while they hold it.
pub const ADMIN_ROLE: &str = "admin";

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub issuer: String,
    pub subject: String,
    pub user_id: String,
    pub group_id: Option<String>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub client_id: Option<String>,
    /// The token's `aud`, as a list.
    pub audiences: Vec<String>,
    pub jti: Option<String>,
    /// The `kid` that verified the token: a cached token stops working when its key goes.
    pub key_id: String,
    pub issued_at: Option<u64>,
    pub expires_at: u64,
    /// RFC 8693 `act.sub`: who is acting as the user (an admin, through token exchange).
    pub actor: Option<String>,
}

impl Principal {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// A `client_credentials` token: the client acting for itself (`sub` = `client:<client_id>`,
    /// see `grant`), never a user.
    pub fn is_client(&self) -> bool {
        self.client_id.as_deref().is_some_and(|id| {
            self.subject
                .strip_prefix("client:")
                .is_some_and(|rest| rest == id)
        })
    }
}

/// Why a request is not authenticated, in RFC 6750 §3.1 terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthnError {
    /// No credentials at all: 401 without an error code.
    #[error("this route requires a bearer token")]
    Missing,
    /// Malformed `Authorization`, or a token in more than one place: 400 `invalid_request`.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// Anything wrong with the token itself: 401 `invalid_token`.
    #[error("{0}")]
    InvalidToken(&'static str),
    /// An opaque token could not be looked up (the store is unreachable): 503, retry.
    #[error("the token cannot be checked right now")]
    Unavailable,
    /// A trusted issuer, but a `kid` not in the key set (yet): worth one JWKS refresh.
    #[error("the token's signing key is unknown")]
    UnknownKey { issuer: String, kid: String },
}

impl AuthnError {
    /// The `reason` label of the auth-failures metric. The messages are this module's own.
    pub fn failure(&self) -> AuthFailure {
        match self {
            AuthnError::Missing => AuthFailure::Missing,
            AuthnError::InvalidRequest(_) => AuthFailure::Malformed,
            AuthnError::Unavailable => AuthFailure::Unavailable,
            AuthnError::UnknownKey { .. } => AuthFailure::UnknownKey,
            AuthnError::InvalidToken(message) => match *message {
                "the token has expired" => AuthFailure::Expired,
                "the token's signature is invalid" => AuthFailure::BadSignature,
                "the token has been revoked" => AuthFailure::Revoked,
                "the token's signing key is unknown" | "the token names no key (kid)" => {
                    AuthFailure::UnknownKey
                }
                _ => AuthFailure::Invalid,
            },
        }
    }
}

/// What an issuer's tokens must look like, and which claims carry the identity.
#[derive(Debug, Clone)]
pub struct IssuerPolicy {
    pub issuer: String,
    pub algorithms: Vec<Algorithm>,
    /// When not empty, `aud` is required and must name one of these.
    pub audiences: Vec<String>,
    /// Accepted `typ` header values (case-insensitive). Empty: `typ` is not checked.
    pub accepted_types: Vec<String>,
    pub user_claim: String,
    pub group_claim: Option<String>,
    /// Only issuers configured with a roles claim can grant roles (so: impersonation).
    pub roles_claim: Option<String>,
    /// Put before the subject and group of every token (`None`: they are local ids).
    pub subject_prefix: Option<String>,
    /// The `act` claim is believed (ours: token exchange; an external issuer only when the
    /// operator says so).
    pub delegation: bool,
}

impl IssuerPolicy {
    /// Our own tokens: `at+jwt` (and the identity-assertion type is refused by omission),
    /// identity in `sub`/`gid`, roles in `roles`.
    pub fn own(config: &crate::config::AuthConfig) -> Self {
        IssuerPolicy {
            issuer: config.issuer.clone(),
            algorithms: config.algorithms.clone(),
            audiences: Vec::new(),
            accepted_types: bearer::OWN_ACCESS_TOKEN_TYPES
                .iter()
                .map(|t| t.to_string())
                .collect(),
            user_claim: "sub".to_owned(),
            group_claim: Some("gid".to_owned()),
            roles_claim: Some("roles".to_owned()),
            subject_prefix: None,
            delegation: true,
        }
    }
}

/// Counts of one issuer's key-set refreshes (ours: the keyring's reloads from the store;
/// external issuers: JWKS fetches), for `/metrics`.
#[derive(Debug, Default)]
pub struct KeySetCounters {
    refreshes: std::sync::atomic::AtomicU64,
    failures: std::sync::atomic::AtomicU64,
    /// Unix seconds of the last good refresh; 0 = never.
    last_success: std::sync::atomic::AtomicU64,
}

/// A snapshot of [`KeySetCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeySetStats {
    pub refreshes: u64,
    pub failures: u64,
    pub last_success: Option<u64>,
}

impl KeySetCounters {
    pub fn succeeded(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.refreshes.fetch_add(1, Relaxed);
        self.last_success
            .store(jsonwebtoken::get_current_timestamp(), Relaxed);
    }

    pub fn failed(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.refreshes.fetch_add(1, Relaxed);
        self.failures.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> KeySetStats {
        use std::sync::atomic::Ordering::Relaxed;
        let last = self.last_success.load(Relaxed);
        KeySetStats {
            refreshes: self.refreshes.load(Relaxed),
            failures: self.failures.load(Relaxed),
            last_success: (last > 0).then_some(last),
        }
    }
}

/// Answers "was this token revoked?" from memory; the store keeps the source of truth.
pub trait Revocations: Send + Sync {
    fn is_revoked(&self, principal: &Principal) -> bool;

    /// Is what we know about this principal's revocations too old to rely on (the store has
    /// been unreachable for too long)? Then the token is refused as unavailable, not accepted.
    fn is_stale(&self, _principal: &Principal) -> bool {
        false
    }

    /// The principal with its user's **current** group and roles when they changed after the
    /// token was issued (`Ok(None)`: the token's claims are current), or why the token may no
    /// longer be used (the admin named in `act` is no longer one).
    fn current(&self, _principal: &Principal) -> Result<Option<Principal>, &'static str> {
        Ok(None)
    }
}

/// For deployments and tests without a store.
pub struct NoRevocations;

impl Revocations for NoRevocations {
    fn is_revoked(&self, _: &Principal) -> bool {
        false
    }
}

struct Issuer {
    policy: IssuerPolicy,
    validations: HashMap<Algorithm, Validation>,
}

pub struct Verifier {
    /// Every algorithm any trusted issuer may use.
    algorithms: std::collections::HashSet<Algorithm>,
    keys: Arc<KeySet>,
    issuers: HashMap<String, Issuer>,
    cache: VerifiedCache,
    doorkeeper: cache::Doorkeeper,
    revocations: Arc<dyn Revocations>,
}

#[derive(serde::Deserialize)]
struct IssuerPeek {
    iss: Option<String>,
}

impl Verifier {
    pub fn new(
        keys: Arc<KeySet>,
        policies: Vec<IssuerPolicy>,
        leeway_secs: u64,
        cache_entries: usize,
        revocations: Arc<dyn Revocations>,
    ) -> Self {
        let issuers: HashMap<String, Issuer> = policies
            .into_iter()
            .map(|policy| {
                let validations = policy
                    .algorithms
                    .iter()
                    .map(|alg| (*alg, validation(&policy, *alg, leeway_secs)))
                    .collect();
                (
                    policy.issuer.clone(),
                    Issuer {
                        policy,
                        validations,
                    },
                )
            })
            .collect();
        let algorithms = issuers
            .values()
            .flat_map(|i: &Issuer| i.policy.algorithms.iter().copied())
            .collect();
        Verifier {
            algorithms,
            keys,
            issuers,
            cache: VerifiedCache::new(cache_entries),
            doorkeeper: cache::Doorkeeper::new(),
            revocations,
        }
    }

    pub fn keys(&self) -> &Arc<KeySet> {
        &self.keys
    }

    pub fn cache_stats(&self) -> cache::CacheStats {
        self.cache.stats()
    }

    /// Verifies `token` now (jsonwebtoken reads the same clock for `exp`/`nbf`).
    pub fn verify(&self, token: &str) -> Result<Arc<Principal>, AuthnError> {
        let now = jsonwebtoken::get_current_timestamp();
        let digest = cache::digest(token);
        let principal = match self.cache.get(&digest, now) {
            Some(hit) if self.keys.get(&hit.issuer, &hit.key_id).is_some() => hit,
            Some(_) => {
                return Err(AuthnError::InvalidToken(
                    "the token's signing key is unknown",
                ));
            }
            None => {
                let verified = Arc::new(self.verify_uncached(token)?);
                if self.doorkeeper.seen_before(&digest) {
                    self.cache.insert(digest, Arc::clone(&verified), now);
                }
                verified
            }
        };
        if self.revocations.is_stale(&principal) {
            return Err(AuthnError::Unavailable);
        }
        if self.revocations.is_revoked(&principal) {
            return Err(AuthnError::InvalidToken("the token has been revoked"));
        }
        match self.revocations.current(&principal) {
            Ok(None) => Ok(principal),
            Ok(Some(current)) => Ok(Arc::new(current)),
            Err(reason) => Err(AuthnError::InvalidToken(reason)),
        }
    }

    fn verify_uncached(&self, token: &str) -> Result<Principal, AuthnError> {
        let bad = AuthnError::InvalidToken;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| bad("the token is not a well-formed JWT"))?;
        // The allow-list comes before anything else reads the token's payload.
        if !self.algorithms.contains(&header.alg) {
            return Err(bad("the token's algorithm is not allowed"));
        }
        let peek: IssuerPeek = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| bad("the token is not a well-formed JWT"))?;
        let issuer = peek
            .iss
            .as_deref()
            .and_then(|iss| self.issuers.get(iss))
            .ok_or(bad("the token's issuer is not trusted"))?;
        let validation = issuer
            .validations
            .get(&header.alg)
            .ok_or(bad("the token's algorithm is not allowed"))?;
        if !issuer.policy.accepted_types.is_empty() {
            let typ = header.typ.as_deref().unwrap_or_default();
            if !issuer
                .policy
                .accepted_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(typ))
            {
                return Err(bad("the token is not an access token"));
            }
        }
        // RFC 7515 §4.1.11: extensions we do not understand must not be ignored.
        if header.crit.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(bad(
                "the token has critical header parameters this gateway does not support",
            ));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or(bad("the token names no key (kid)"))?;
        let key =
            self.keys
                .get(&issuer.policy.issuer, kid)
                .ok_or_else(|| AuthnError::UnknownKey {
                    issuer: issuer.policy.issuer.clone(),
                    kid: kid.to_owned(),
                })?;
        if key.alg != header.alg {
            return Err(bad("the token's algorithm does not match its key"));
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation)
            .map_err(|e| bad(reason(&e)))?;
        principal(&issuer.policy, kid, &data.claims)
    }
}

fn validation(policy: &IssuerPolicy, alg: Algorithm, leeway: u64) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = leeway;
    validation.validate_nbf = true;
    validation.set_issuer(&[&policy.issuer]);
    let mut required = vec!["exp", "iss"];
    if policy.audiences.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&policy.audiences);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    validation
}

fn reason(error: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::ImmatureSignature => "the token is not valid yet",
        ErrorKind::InvalidIssuer => "the token's issuer is not trusted",
        ErrorKind::InvalidAudience => "the token is not meant for this audience",
        ErrorKind::InvalidSignature => "the token's signature is invalid",
        ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
        ErrorKind::InvalidClaimFormat(_) => "a time claim of the token is not a number",
        ErrorKind::InvalidAlgorithm => "the token's algorithm is not allowed",
        _ => "the token is invalid",
    }
}

fn principal(
    policy: &IssuerPolicy,
    kid: &str,
    claims: &Map<String, Value>,
) -> Result<Principal, AuthnError> {
    let text = |name: &str| claims.get(name).and_then(scalar_text);
    // What becomes an identity header must be one plain value: no list (`1002, 1`), no
    // padding (` 1`), nothing an upstream could split or trim into another id.
    let id = |value: String| -> Result<String, AuthnError> {
        if !is_header_id(&value) {
            return Err(AuthnError::InvalidToken(
                "the token's identity claims cannot be forwarded as they are",
            ));
        }
        Ok(match &policy.subject_prefix {
            Some(prefix) => format!("{prefix}{value}"),
            None => value,
        })
    };
    let user_id =
        id(text(&policy.user_claim).ok_or(AuthnError::InvalidToken("the token names no user"))?)?;
    let list = |name: &str| claims.get(name).map(string_list).unwrap_or_default();
    let mut scopes = list("scope");
    scopes.extend(list("scopes"));
    Ok(Principal {
        issuer: policy.issuer.clone(),
        subject: text("sub").unwrap_or_else(|| user_id.clone()),
        group_id: policy
            .group_claim
            .as_deref()
            .and_then(text)
            .map(id)
            .transpose()?,
        roles: policy.roles_claim.as_deref().map(list).unwrap_or_default(),
        scopes,
        client_id: text("client_id"),
        audiences: list("aud"),
        jti: text("jti"),
        key_id: kid.to_owned(),
        issued_at: claims.get("iat").and_then(Value::as_u64),
        expires_at: claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or(AuthnError::InvalidToken("the token lacks a required claim"))?,
        actor: claims
            .get("act")
            .filter(|_| policy.delegation)
            .and_then(|act| act.get("sub"))
            .and_then(scalar_text)
            .map(id)
            .transpose()?,
        user_id,
    })
}

/// At most 256 characters, none of them whitespace, a comma or a control character.
fn is_header_id(value: &str) -> bool {
    (1..=256).contains(&value.len())
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',')
}

/// Ids arrive as strings or numbers depending on the issuer.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A space-separated string (OAuth `scope`) or an array of strings.
fn string_list(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
