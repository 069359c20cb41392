//! The store's one error type. Variants say who is at fault: the caller's input (`Invalid`,
//! `Conflict`, `NotFound`), the presented credential (`BadCredentials`, `Expired`, `Replayed`,
//! `Revoked`, `WrongClient`), or the deployment (`SchemaTooNew`, `KeySecret`, `Backend`, `Io`).
//! Messages are one line and never contain a password, secret, token or hash.

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what} already exists")]
    Conflict { what: String },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// Unknown login name or wrong password: deliberately indistinguishable.
    #[error("invalid login name or password")]
    BadCredentials,
    #[error("user is disabled")]
    UserDisabled,
    #[error("invalid client id or secret")]
    BadClientCredentials,
    #[error("{what} has expired")]
    Expired { what: &'static str },
    /// A single-use credential was presented again: what was issued from it is now revoked.
    #[error("{what} was already used; everything issued from it is revoked")]
    Replayed { what: &'static str },
    #[error("{what} is revoked")]
    Revoked { what: &'static str },
    #[error("{what} was issued to another client")]
    WrongClient { what: &'static str },
    #[error("signing key {kid} is {state}; cannot {action} it")]
    KeyState {
        kid: String,
        state: &'static str,
        action: &'static str,
    },
    #[error(
        "the database schema is version {found}, newer than this authgate supports \
         ({supported}); run a newer authgate"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("key secret: {0}")]
    KeySecret(String),
    #[error("cryptography failed: {0}")]
    Crypto(&'static str),
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Backend(#[from] sqlx::Error),
}

impl StoreError {
    /// The database could not be reached (connection refused or lost, TLS, pool exhausted or
    /// closed, worker crashed, protocol broken): the same operation may succeed if retried.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Backend(
                sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Protocol(_)
            )
        )
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        StoreError::NotFound { what: what.into() }
    }

    pub(crate) fn conflict(what: impl Into<String>) -> Self {
        StoreError::Conflict { what: what.into() }
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        StoreError::Invalid {
            field,
            message: message.into(),
        }
    }
}
