//! The store's one error type. Variants say who is at fault: the caller's input (`Invalid`,
//! `Conflict`, `NotFound`), the presented credential (`BadCredentials`, `Expired`, `Replayed`,
//! `Revoked`, `WrongClient`), or the deployment (`SchemaTooNew`, `KeySecret`, `Backend`, `Io`).
//! Messages are one line and never contain a password, secret, token or hash.

use std::path::PathBuf;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    KeySecret(#[source] KeySecretError),
    #[error("cryptography failed: {0}")]
    Crypto(&'static str),
    #[error("password hashing failed: {0}")]
    Hashing(#[source] HashingError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Backend(#[from] sqlx::Error),
}

/// What is wrong with a key secret (the store's, or a secret shared with another service):
/// the deployment's fault, found at start-up. The messages say how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeySecretError {
    /// The environment variable is set, but to fewer than 32 characters.
    #[error("{env} must be at least 32 characters (e.g. `openssl rand -base64 32`)")]
    TooShort {
        /// The variable's name.
        env: String,
    },
    /// A secret shared between instances, with no variable set and no file to fall back on.
    #[error("{env} must be set (32+ characters, the same on every instance)")]
    Unset {
        /// The variable's name.
        env: String,
    },
    /// A PostgreSQL store without the variable: instances cannot share a file.
    #[error(
        "a PostgreSQL store needs a key secret: set {env} to the same random value \
         (32+ characters, e.g. `openssl rand -base64 32`) on every instance"
    )]
    UnsetForCluster {
        /// The variable's name.
        env: String,
    },
    /// The secret file can be read by group or others.
    #[error("{} is readable by other users (mode {:o}); chmod 600 it", path.display(), mode & 0o777)]
    FileExposed {
        /// The secret file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The secret file holds fewer than 32 characters.
    #[error("{} holds fewer than 32 characters", path.display())]
    FileTooShort {
        /// The secret file.
        path: PathBuf,
    },
    /// The store's check value does not open: another secret than the one the keys were
    /// sealed with.
    #[error("the key secret is not the one this store's private keys were encrypted with")]
    NotThisStores,
    /// A sealed private key does not open (another secret, or an altered row).
    #[error(
        "a private key does not decrypt: the key secret differs from the one it was \
         sealed with, or the row was altered"
    )]
    SealedKeyDoesNotOpen,
}

/// Why a password could not be hashed (verification never fails this way: a broken hash is
/// a mismatch).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashingError {
    /// Argon2 refused its input or parameters.
    #[error("{0}")]
    Argon2(#[from] argon2::password_hash::Error),
    /// The semaphore in front of the blocking pool was closed (shutting down).
    #[error("the hashing pool is closed")]
    PoolClosed(#[from] tokio::sync::AcquireError),
    /// The blocking task panicked or was cancelled.
    #[error("{0}")]
    Task(#[from] tokio::task::JoinError),
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
