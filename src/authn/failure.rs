//! Why a request was not authenticated or not allowed, as one small closed set: the `reason`
//! label of the auth-failures metric. [`super::AuthnError::failure`] classifies this module's
//! errors; the proxy adds the authorization refusals.

/// Why a request was not authenticated or not allowed (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthFailure {
    Missing,
    Malformed,
    Expired,
    BadSignature,
    UnknownKey,
    Revoked,
    Invalid,
    InsufficientScope,
    ImpersonationRefused,
    Unavailable,
}

impl AuthFailure {
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
