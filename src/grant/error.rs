//! The engine's one error type. Its variants are RFC 6749 §5.2's error codes plus the two the
//! engine needs besides (`TooManyAttempts`, `Internal`), and its [`Disposition`]: what a
//! failure means (whose fault, retry or not), decided and logged here once. Each dialect only
//! renders the pair in its own wire shape (status, field names, wording).
//!
//! Messages are one line, safe to show to the caller, and never contain a password, secret,
//! token or hash. The store error that caused a refusal stays reachable as the `source`.

use std::borrow::Cow;
use std::time::Duration;

use crate::keyring::KeyringError;
use crate::store::StoreError;
use crate::tokens::SignError;

/// What a failure means for the caller, decided once here for every dialect (as rustls maps
/// its errors to alerts in one place): who is at fault (pingora's `ErrorSource`) and whether a
/// retry can succeed. Semantic, not HTTP: each dialect maps it to its status and wording
/// (`Caller`/`Credentials` to the 4xx its document fixes, `Throttled` 429, `Unavailable` 503,
/// `Internal` 500) and never decides this itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disposition {
    /// The request itself is malformed or not allowed.
    Caller,
    /// The presented credential (client secret, password, refresh token, code) was refused.
    Credentials,
    /// The brute-force back-off refuses this source (and account) until the delay has passed.
    Throttled(Duration),
    /// Our store cannot be reached right now: a retry may succeed, and the presented
    /// credential (a refresh token above all) is still good.
    Unavailable,
    /// Our store, keys or signing failed; the caller did nothing wrong.
    Internal,
}

/// How long a client should wait before retrying when the store is unreachable: long enough
/// not to hammer a store that is coming back, short enough for an interactive login.
const UNAVAILABLE_RETRY: Duration = Duration::from_secs(1);

impl Disposition {
    /// When the caller may try again (`Retry-After`): the back-off's delay, or a second for an
    /// unreachable store; `None` when a retry of the same request cannot succeed.
    pub fn retry_after(self) -> Option<Duration> {
        match self {
            Disposition::Throttled(after) => Some(after),
            Disposition::Unavailable => Some(UNAVAILABLE_RETRY),
            _ => None,
        }
    }
}

impl From<&GrantError> for Disposition {
    fn from(error: &GrantError) -> Self {
        match error {
            GrantError::InvalidClient { .. } | GrantError::InvalidGrant { .. } => {
                Disposition::Credentials
            }
            GrantError::TooManyAttempts { retry_after } => Disposition::Throttled(*retry_after),
            GrantError::Internal { .. } if error.is_unavailable() => Disposition::Unavailable,
            GrantError::Internal { .. } => Disposition::Internal,
            _ => Disposition::Caller,
        }
    }
}

/// Why the engine refused or failed a token request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// Malformed or contradictory request (e.g. client credentials in two places).
    #[error("{reason}")]
    InvalidRequest {
        /// What is wrong, for the caller.
        reason: Cow<'static, str>,
    },
    /// Client authentication failed (unknown client, wrong or missing secret). How it is
    /// answered is the dialect's: the `oauth2` dialect answers 401 with a `WWW-Authenticate`
    /// challenge whatever the method the client used (RFC 6749 §5.2 asks it only after HTTP
    /// authentication, and always sending it is allowed).
    #[error("client authentication failed")]
    InvalidClient {
        /// The store's verdict, when it gave one.
        #[source]
        source: Option<StoreError>,
    },
    /// The grant (password, refresh token, code, subject token) is invalid, expired, revoked,
    /// or was issued to another client. Deliberately vague: `reason` never tells an unknown
    /// user from a wrong password.
    #[error("{reason}")]
    InvalidGrant {
        /// The same text for every refused credential of a kind (no user enumeration).
        reason: &'static str,
        /// The store's verdict (`NotFound`, `Replayed`, …), for logs only.
        #[source]
        source: Option<StoreError>,
    },
    /// The client is authenticated but not registered for this grant.
    #[error("the client is not registered for the {grant} grant")]
    UnauthorizedClient {
        /// The grant type's RFC name.
        grant: &'static str,
    },
    /// A grant type the engine does not know (dialects build it while parsing).
    #[error("grant type `{grant}` is not supported")]
    UnsupportedGrantType {
        /// The `grant_type` as the caller sent it.
        grant: String,
    },
    /// The scopes asked for are unknown, malformed, beyond the client's registration or
    /// wider than the refresh token's.
    #[error("{reason}")]
    InvalidScope {
        /// Which scope and why, for the caller.
        reason: Cow<'static, str>,
    },
    /// RFC 8707 §2: a `resource` that is malformed, or that the client (or the grant being
    /// narrowed) may not use.
    #[error("{reason}")]
    InvalidTarget {
        /// Which resource and why, for the caller.
        reason: Cow<'static, str>,
    },
    /// Too many failed attempts from this source (and account): try again after the delay.
    #[error("too many failed attempts; retry after {} s", retry_after.as_secs())]
    TooManyAttempts {
        /// At least the back-off's remaining block.
        retry_after: Duration,
    },
    /// Our side failed; `context` says doing what.
    #[error("{context}: {source}")]
    Internal {
        /// What the engine was doing (for logs).
        context: &'static str,
        /// What failed.
        #[source]
        source: InternalError,
    },
}

/// What failed on our side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InternalError {
    /// The store (an unreachable one is [`Disposition::Unavailable`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No usable signing key.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// Signing the token failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// RS256 signing runs on the blocking pool; that task panicked or was cancelled.
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
            GrantError::InvalidTarget { .. } => "invalid_target",
            GrantError::TooManyAttempts { .. } => "too_many_attempts",
            GrantError::Internal { .. } => "server_error",
        }
    }

    /// Our store could not be reached (connection refused or lost, pool exhausted): the
    /// request may succeed if retried, so it is [`Disposition::Unavailable`] (503) — never
    /// `invalid_grant`, which would make a client throw its refresh token away.
    fn is_unavailable(&self) -> bool {
        matches!(
            self,
            GrantError::Internal {
                source: InternalError::Store(error),
                ..
            } if error.is_unavailable()
        )
    }

    /// Classifies the failure ([`Disposition`]) and logs it when it is ours: the one place
    /// that does, so every dialect logs a 503 or 500 the same way and a refusal of the caller
    /// (expected, and the caller's to fix) never.
    pub fn disposition(&self) -> Disposition {
        let disposition = Disposition::from(self);
        match disposition {
            Disposition::Unavailable => {
                tracing::warn!(error = %self, "token request failed: the store is unreachable");
            }
            Disposition::Internal => {
                tracing::warn!(error = %self, "token request failed on our side")
            }
            _ => {}
        }
        disposition
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

    pub(crate) fn target(reason: impl Into<Cow<'static, str>>) -> Self {
        GrantError::InvalidTarget {
            reason: reason.into(),
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
