//! The store's one error type. Variants say who is at fault: the caller's input (`Invalid`,
//! `Conflict`, `NotFound`), the presented credential (`BadCredentials`, `Expired`, `Replayed`,
//! `Revoked`, `WrongClient`), or the deployment (`SchemaTooNew`, `KeySecret`, `Backend`, `Io`).
//! Messages are one line and never contain a password, secret, token or hash.

use std::path::PathBuf;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The named record does not exist (a user, client, key, code…); the caller asked for it.
    #[error("{what} not found")]
    NotFound {
        /// What was looked up, e.g. `user 42` (never a secret).
        what: String,
    },
    /// A unique name or id is taken (login names share one namespace across users).
    #[error("{what} already exists")]
    Conflict {
        /// What collided, e.g. `login name alice`.
        what: String,
    },
    /// The caller's input breaks a rule of the store (a login name's syntax, a redirect URI…).
    #[error("{field}: {message}")]
    Invalid {
        /// The input field, as the CLI and the dialects name it.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Unknown login name or wrong password: deliberately indistinguishable.
    #[error("invalid login name or password")]
    BadCredentials,
    /// The account is disabled; the engine answers it like a wrong password.
    #[error("user is disabled")]
    UserDisabled,
    /// Unknown client id or wrong secret: deliberately indistinguishable.
    #[error("invalid client id or secret")]
    BadClientCredentials,
    /// A code or refresh token outlived its lifetime.
    #[error("{what} has expired")]
    Expired {
        /// The kind of credential (`authorization code`, `refresh token`).
        what: &'static str,
    },
    /// A single-use credential was presented again: what was issued from it is now revoked.
    #[error("{what} was already used; everything issued from it is revoked")]
    Replayed {
        /// The kind of credential.
        what: &'static str,
    },
    /// The credential was revoked (its family, its user's not-before, or explicitly).
    #[error("{what} is revoked")]
    Revoked {
        /// The kind of credential.
        what: &'static str,
    },
    /// The credential belongs to another client than the one presenting it.
    #[error("{what} was issued to another client")]
    WrongClient {
        /// The kind of credential.
        what: &'static str,
    },
    /// A signing-key transition the key's state machine does not allow.
    #[error("signing key {kid} is {state}; cannot {action} it")]
    KeyState {
        /// The key's id.
        kid: String,
        /// Its state now (`retired`, `pending`, …).
        state: &'static str,
        /// The refused transition (`activate`, `retire`, …).
        action: &'static str,
    },
    /// The database was migrated by a newer authgate: refuse rather than misread it.
    #[error(
        "the database schema is version {found}, newer than this authgate supports \
         ({supported}); run a newer authgate"
    )]
    SchemaTooNew {
        /// The schema version in the database.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The key secret (sealing private keys and the storage secret) is missing or wrong.
    #[error("key secret: {0}")]
    KeySecret(#[source] KeySecretError),
    /// The crypto library refused (random generation, sealing); a fixed description, as the
    /// library gives no detail worth keeping.
    #[error("cryptography failed: {0}")]
    Crypto(&'static str),
    /// A new password could not be hashed.
    #[error("password hashing failed: {0}")]
    Hashing(#[source] HashingError),
    /// A file the store owns (the SQLite database, the secret file) could not be used.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The database answered with an error or could not be reached ([`Self::is_unavailable`]).
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
