//! Bearer authentication: take the token from the request, verify it against the cached key
//! set, and produce a [`Principal`]. Every check named in the security invariants lives here,
//! in this order: algorithm allow-list (before anything else), `typ`, `crit`, issuer → key
//! lookup (key bound to one algorithm), signature, `exp` (required, numeric), `nbf` (numeric
//! when present), `iss`, `aud`, then revocation — also for cached tokens. What is wrong with a
//! refused token is a [`TokenDefect`]; this module knows nothing of metrics or HTTP answers.

mod bearer;
mod cache;
mod defect;
mod failure;
pub mod jwks;
pub mod keyset;
mod memo;
pub mod opaque;
pub mod session;
mod verifier;

pub use bearer::{Authenticator, extract_token};
pub use cache::{CacheStats, VerifiedCache};
pub use defect::{RequestDefect, TokenDefect};
pub use failure::AuthFailure;
pub use memo::TokenMemo;
pub use opaque::OpaqueTokens;
pub use session::{SESSION_COOKIE, SHARED_SESSION_COOKIE, SessionCookie, Sessions};
pub use verifier::{IdTokenHint, Verifier};

use std::sync::Arc;

use jsonwebtoken::Algorithm;

/// The role that makes a user an admin: may act for other users (impersonation, token
/// exchange) while they hold it.
pub const ADMIN_ROLE: &str = "admin";

/// Who a verified token speaks for. Built only by verification (JWT or opaque lookup), so
/// every id in it is already fit to be one identity header value (see `verifier.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The issuer that vouched for the token (ours, or a configured external one).
    pub issuer: String,
    /// The raw `sub` claim (for our client tokens `client:<client_id>`); the user id when the
    /// token has no `sub`.
    pub subject: String,
    /// The user as forwarded upstream: the policy's user claim, with its subject prefix.
    pub user_id: String,
    /// The policy's group claim, prefixed like the user id; `None` when the issuer has none.
    pub group_id: Option<String>,
    /// Roles, only from issuers configured with a roles claim (so only they can impersonate).
    pub roles: Vec<String>,
    /// `scope` (space-separated) and `scopes` (array) merged, in token order.
    pub scopes: Vec<String>,
    /// The OAuth client the token was issued to, when the token says.
    pub client_id: Option<String>,
    /// The token's `aud`, as a list.
    pub audiences: Vec<String>,
    /// The token id: what revocation of a single token keys on.
    pub jti: Option<String>,
    /// The `kid` that verified the token: a cached token stops working when its key goes.
    pub key_id: String,
    /// `iat`, Unix seconds: revocations "before this time" compare against it.
    pub issued_at: Option<u64>,
    /// `exp`, Unix seconds (required): bounds how long the principal may be cached.
    pub expires_at: u64,
    /// RFC 8693 `act.sub`: who is acting as the user (an admin, through token exchange).
    pub actor: Option<String>,
}

impl Principal {
    /// Whether the token carries `role` (exact, case-sensitive match).
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

/// Why a request is not authenticated, in RFC 6750 §3.1 terms. The proxy turns each variant
/// into its status and challenge; the `Display` text is the client's `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthnError {
    /// No credentials at all: 401 without an error code.
    #[error("this route requires a bearer token")]
    Missing,
    /// Malformed `Authorization`, or a token in more than one place: 400 `invalid_request`.
    #[error(transparent)]
    InvalidRequest(RequestDefect),
    /// Anything wrong with the token itself: 401 `invalid_token`.
    #[error(transparent)]
    InvalidToken(TokenDefect),
    /// An opaque token could not be looked up (the store is unreachable): 503, retry.
    #[error("the token cannot be checked right now")]
    Unavailable,
    /// A trusted issuer, but a `kid` not in the key set (yet): worth one JWKS refresh.
    #[error("the token's signing key is unknown")]
    UnknownKey {
        /// The token's `iss`, one of the trusted issuers.
        issuer: String,
        /// The `kid` the key set does not hold.
        kid: String,
    },
}

impl AuthnError {
    /// The `reason` label of the auth-failures metric.
    pub fn failure(&self) -> AuthFailure {
        match self {
            AuthnError::Missing => AuthFailure::Missing,
            AuthnError::InvalidRequest(_) => AuthFailure::Malformed,
            AuthnError::Unavailable => AuthFailure::Unavailable,
            AuthnError::UnknownKey { .. } => AuthFailure::UnknownKey,
            AuthnError::InvalidToken(defect) => defect.failure(),
        }
    }
}

impl From<TokenDefect> for AuthnError {
    fn from(defect: TokenDefect) -> Self {
        AuthnError::InvalidToken(defect)
    }
}

impl From<RequestDefect> for AuthnError {
    fn from(defect: RequestDefect) -> Self {
        AuthnError::InvalidRequest(defect)
    }
}

/// What an issuer's tokens must look like, and which claims carry the identity.
#[derive(Debug, Clone)]
pub struct IssuerPolicy {
    /// The exact `iss` value; tokens are routed to this policy by it.
    pub issuer: String,
    /// The allow-list: only these algorithms are accepted, whatever a key or token says.
    pub algorithms: Vec<Algorithm>,
    /// When not empty, `aud` is required and must name one of these.
    pub audiences: Vec<String>,
    /// Accepted `typ` header values (case-insensitive). Empty: `typ` is not checked.
    pub accepted_types: Vec<String>,
    /// The claim that names the user (required; `sub` for ours).
    pub user_claim: String,
    /// The claim that names the user's group, if the issuer has one.
    pub group_claim: Option<String>,
    /// Only issuers configured with a roles claim can grant roles (so: impersonation).
    pub roles_claim: Option<String>,
    /// Put before the subject and group of every token (`None`: they are local ids).
    pub subject_prefix: Option<String>,
    /// The `act` claim is believed (ours: token exchange; an external issuer only when the
    /// operator says so).
    pub delegation: bool,
    /// RFC 9068 §2.2's `client_id` is required (ours: every access token we sign carries it,
    /// our ID tokens never do, so an ID token cannot pass for an access token).
    pub require_client_id: bool,
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
            require_client_id: true,
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
    /// Refresh attempts, good or not.
    pub refreshes: u64,
    /// Attempts that failed (the previous keys stayed in place).
    pub failures: u64,
    /// Unix seconds of the last good refresh; `None` when there has been none.
    pub last_success: Option<u64>,
}

impl KeySetCounters {
    /// Records a good refresh now.
    pub fn succeeded(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.refreshes.fetch_add(1, Relaxed);
        self.last_success
            .store(jsonwebtoken::get_current_timestamp(), Relaxed);
    }

    /// Records a failed refresh (it counts as an attempt too).
    pub fn failed(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.refreshes.fetch_add(1, Relaxed);
        self.failures.fetch_add(1, Relaxed);
    }

    /// The counters as they are now (each read on its own: not one atomic snapshot).
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
/// Checked on every request, cached tokens included, so implementations must answer from
/// memory without blocking.
pub trait Revocations: Send + Sync {
    /// The token, its user (before a time) or its family has been revoked.
    fn is_revoked(&self, principal: &Principal) -> bool;

    /// Is what we know about this principal's revocations too old to rely on (the store has
    /// been unreachable for too long)? Then the token is refused as unavailable, not accepted.
    fn is_stale(&self, _principal: &Principal) -> bool {
        false
    }

    /// The principal with its user's **current** group and roles when they changed after the
    /// token was issued (`Ok(None)`: the token's claims are current), or why the token may no
    /// longer be used (the admin named in `act` is no longer one).
    fn current(&self, _principal: &Principal) -> Result<Option<Principal>, TokenDefect> {
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

/// The checks every principal passes on every use, fresh or cached, JWT or opaque: what we
/// know of revocations is recent enough, the token is not revoked, and its claims are brought
/// up to date (or refused when the admin acting in it no longer may).
fn unrevoked(
    revocations: &dyn Revocations,
    principal: Arc<Principal>,
) -> Result<Arc<Principal>, AuthnError> {
    if revocations.is_stale(&principal) {
        return Err(AuthnError::Unavailable);
    }
    if revocations.is_revoked(&principal) {
        return Err(TokenDefect::Revoked.into());
    }
    match revocations.current(&principal)? {
        None => Ok(principal),
        Some(current) => Ok(Arc::new(current)),
    }
}

#[cfg(test)]
mod tests;
