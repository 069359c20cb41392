//! Why a request was not authenticated or not allowed, as one small closed set: the `reason`
//! label of the auth-failures metric. [`super::AuthnError::failure`] classifies this module's
//! errors; the proxy adds the authorization refusals.

/// Why a request was not authenticated or not allowed (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthFailure {
    /// No token on a route that needs one.
    Missing,
    /// The credentials could not be read (bad `Authorization`, two tokens, a bad impersonation
    /// header).
    Malformed,
    /// The token's `exp` has passed.
    Expired,
    /// The signature does not verify.
    BadSignature,
    /// No key with the token's `kid` (or no `kid` at all, or the key has gone).
    UnknownKey,
    /// The token, its user or its family was revoked.
    Revoked,
    /// Any other defect of the token, or an audience the route does not accept.
    Invalid,
    /// A valid token without a scope the route requires.
    InsufficientScope,
    /// Impersonation asked for by someone not allowed to, or of a user that does not exist.
    ImpersonationRefused,
    /// The token could not be checked (store unreachable, revocations too stale).
    Unavailable,
}

impl AuthFailure {
    /// The label value, as `/metrics` prints it (stable: dashboards depend on it).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::Expired => "expired",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::UnknownKey => "unknown_kid",
            AuthFailure::Revoked => "revoked",
            AuthFailure::Invalid => "invalid",
            AuthFailure::InsufficientScope => "insufficient_scope",
            AuthFailure::ImpersonationRefused => "impersonation_refused",
            AuthFailure::Unavailable => "unavailable",
        }
    }
}
