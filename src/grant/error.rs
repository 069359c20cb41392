//! The engine's one error type. Its variants are RFC 6749 §5.2's error codes plus the two the
//! engine needs besides (`TooManyAttempts`, `Internal`); each dialect maps them to its own wire
//! shape (status, field names) and nothing else decides what a failure means.
//!
//! Messages are one line, safe to show to the caller, and never contain a password, secret,
//! token or hash. The store error that caused a refusal stays reachable as the `source`.

use std::borrow::Cow;
use std::time::Duration;

use crate::keyring::KeyringError;
use crate::store::StoreError;
use crate::tokens::SignError;

/// Who a failure is attributed to (pingora's `ErrorSource`): dialects choose 4xx vs 5xx and
/// logs choose their level by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request itself is malformed or not allowed (4xx).
    Caller,
    /// The presented credential (client secret, password, refresh token, code) was refused.
    Credentials,
    /// Our store, keys or signing failed (5xx); the caller did nothing wrong.
    Internal,
}

/// Why the engine refused or failed a token request.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// Malformed or contradictory request (e.g. client credentials in two places).
    #[error("{reason}")]
    InvalidRequest { reason: Cow<'static, str> },
    /// Client authentication failed (unknown client, wrong or missing secret). Dialects answer
    /// 401 with `WWW-Authenticate` when the client used HTTP authentication.
    #[error("client authentication failed")]
    InvalidClient {
        #[source]
        source: Option<StoreError>,
    },
    /// The grant (password, refresh token, code, subject token) is invalid, expired, revoked,
    /// or was issued to another client. Deliberately vague: `reason` never tells an unknown
    /// user from a wrong password.
    #[error("{reason}")]
    InvalidGrant {
        reason: &'static str,
        #[source]
        source: Option<StoreError>,
    },
    /// The client is authenticated but not registered for this grant.
    #[error("the client is not registered for the {grant} grant")]
    UnauthorizedClient { grant: &'static str },
    /// A grant type the engine does not know (dialects build it while parsing).
    #[error("grant type `{grant}` is not supported")]
    UnsupportedGrantType { grant: String },
    #[error("{reason}")]
    InvalidScope { reason: Cow<'static, str> },
    /// Too many failed attempts from this source (and account): try again after the delay.
    #[error("too many failed attempts; retry after {} s", retry_after.as_secs())]
    TooManyAttempts { retry_after: Duration },
    /// Our side failed; `context` says doing what.
    #[error("{context}: {source}")]
    Internal {
        context: &'static str,
        #[source]
        source: InternalError,
    },
}

/// What failed on our side.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl GrantError {
    /// The RFC 6749 §5.2 `error` code (`too_many_attempts`/`server_error` for the two others).
    pub fn code(&self) -> &'static str {
        match self {
            GrantError::InvalidRequest { .. } => "invalid_request",
            GrantError::InvalidClient { .. } => "invalid_client",
            GrantError::InvalidGrant { .. } => "invalid_grant",
            GrantError::UnauthorizedClient { .. } => "unauthorized_client",
            GrantError::UnsupportedGrantType { .. } => "unsupported_grant_type",
            GrantError::InvalidScope { .. } => "invalid_scope",
            GrantError::TooManyAttempts { .. } => "too_many_attempts",
            GrantError::Internal { .. } => "server_error",
        }
    }

    /// Our store could not be reached (connection refused or lost, pool exhausted): the
    /// request may succeed if retried, so dialects answer 503 — never `invalid_grant`, which
    /// would make a client throw its refresh token away.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            GrantError::Internal {
                source: InternalError::Store(error),
                ..
            } if error.is_unavailable()
        )
    }

    pub fn fault(&self) -> Fault {
        match self {
            GrantError::InvalidClient { .. } | GrantError::InvalidGrant { .. } => {
                Fault::Credentials
            }
            GrantError::Internal { .. } => Fault::Internal,
            _ => Fault::Caller,
        }
    }

    pub(crate) fn request(reason: impl Into<Cow<'static, str>>) -> Self {
        GrantError::InvalidRequest {
            reason: reason.into(),
        }
    }

    pub(crate) fn grant(reason: &'static str) -> Self {
        GrantError::InvalidGrant {
            reason,
            source: None,
        }
    }

    pub(crate) fn scope(reason: impl Into<Cow<'static, str>>) -> Self {
        GrantError::InvalidScope {
            reason: reason.into(),
        }
    }

    pub(crate) fn internal(context: &'static str, source: impl Into<InternalError>) -> Self {
        GrantError::Internal {
            context,
            source: source.into(),
        }
    }

    /// A store failure while checking a presented grant: the credential's problems become
    /// `invalid_grant` (with `reason`), anything else is ours.
    pub(crate) fn from_store(reason: &'static str, error: StoreError) -> Self {
        match error {
            StoreError::NotFound { .. }
            | StoreError::Expired { .. }
            | StoreError::Replayed { .. }
            | StoreError::Revoked { .. }
            | StoreError::WrongClient { .. }
            | StoreError::BadCredentials
            | StoreError::UserDisabled => GrantError::InvalidGrant {
                reason,
                source: Some(error),
            },
            other => GrantError::internal("store", other),
        }
    }
}
