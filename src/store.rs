//! The state store: users, clients, signing keys, refresh tokens, authorization codes,
//! revocations and the audit log, on SQLite (the embedded default) or PostgreSQL (clusters).
//!
//! [`Store`] is the one interface. Its operations are written once, against `db.rs`'s enums
//! over the two backends, with SQL that both accept; only `sqlite.rs`/`postgres.rs` (connecting)
//! and the migration sets differ. Every multi-row invariant (a login name resolves to one user,
//! one active key per algorithm, a refresh token rotates once, a code is taken once) is enforced
//! inside one database transaction, never by a check-then-write in Rust.
//!
//! Contracts every caller relies on:
//! - [`Store::rotate_refresh`] and [`Store::take_code`] succeed at most once per token or code,
//!   under any concurrency, on both backends. A second use is [`StoreError::Replayed`] and has
//!   already revoked what the first use issued.
//! - Secrets, tokens and codes are stored as SHA-256 digests; private keys AES-256-GCM sealed;
//!   passwords as Argon2id. Nothing returned by the store contains a hash or secret, except the
//!   plaintext handed out once when one is created.
//! - Times are Unix seconds, passed in (`now`) so tests can move the clock.

mod audit;
mod backoff;
mod client;
mod db;
mod error;
mod keys;
mod legacy;
mod link;
mod login_name;
mod migrate;
mod opaque;
mod password;
mod postgres;
mod revocation;
mod secret;
mod session;
mod sqlite;
mod token;
mod user;

use crate::config::{StoreBackend, StoreConfig};

pub use audit::{AuditEvent, AuditFilter, AuditRecord};
pub use backoff::FailureCount;
pub use client::{Client, ClientPatch, GrantType, NewClient, StoredClient, is_absolute_uri};
pub use error::{HashingError, KeySecretError, StoreError};
pub use keys::{KeyAlg, KeyState, SigningKey, shared_secret};
pub use link::{PendingLogin, ProviderLink};
pub use login_name::{LoginKind, login_key};
pub use migrate::SCHEMA_VERSION;
pub use opaque::{NewOpaque, OpaqueToken};
pub use revocation::{CurrentIdentity, Revocations};
pub use session::{LoginSession, SessionInfo, SessionLimits};
pub use token::{AccessLink, IssuedRefresh, NewCode, NewRefresh, RefreshToken, TakenCode};
pub use user::{NewUser, Profile, User, UserPatch};

/// A handle on the store; cheap to clone (a connection pool and a few `Arc`s inside).
#[derive(Clone)]
pub struct Store {
    db: db::Pool,
    passwords: password::Passwords,
    sealer: std::sync::Arc<keys::Sealer>,
    /// Every audit record is also appended here as one JSON line (for a SIEM), if set.
    audit_file: Option<std::sync::Arc<std::path::PathBuf>>,
    /// Pool size, acquire timeout and statement timeout, for [`Store::health`].
    limits: (u32, std::time::Duration, std::time::Duration),
    /// `[users.sql]`, attached by [`Store::with_legacy_users`].
    legacy: Option<std::sync::Arc<legacy::LegacyUsers>>,
}

/// A subscription to other instances' change announcements.
pub struct ChangeListener(sqlx::postgres::PgListener);

impl ChangeListener {
    /// Waits for the next announcement. sqlx reconnects a lost connection by itself (what was
    /// announced meanwhile is missed: the periodic reload covers that).
    pub async fn next(&mut self) -> Result<(), StoreError> {
        self.0.recv().await?;
        Ok(())
    }
}

/// What `/readyz` and `/metrics` say about the database.
#[derive(Debug, Clone)]
pub struct StoreHealth {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// A `SELECT 1` succeeded within the timeout given to [`Store::health`].
    pub reachable: bool,
    /// How long the health query took (or the timeout, when it failed).
    pub latency: std::time::Duration,
    /// Connections the pool holds now, busy or idle.
    pub open_connections: u32,
    /// Of those, how many are idle.
    pub idle_connections: usize,
    /// `store.max_connections`.
    pub max_connections: u32,
    /// `store.acquire_timeout`: past it a waiting operation fails and counts as unavailable
    /// ([`StoreError::is_unavailable`]).
    pub acquire_timeout: std::time::Duration,
    /// `store.statement_timeout` (PostgreSQL only: SQLite has none).
    pub statement_timeout: std::time::Duration,
}

impl Store {
    /// Connects (creating the SQLite file on first start), applies the embedded migrations,
    /// and loads the key secret (creating it on first start for SQLite). Refuses a schema newer
    /// than this binary and a PostgreSQL store without a key secret.
    pub async fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        let secret = keys::load_secret(config)?;
        Store::open_with_secret(config, &secret).await
    }

    /// [`Store::open`] with a key secret the caller already has (tests, tools), instead of the
    /// environment variable or file the config names.
    pub async fn open_with_secret(
        config: &StoreConfig,
        secret: &[u8],
    ) -> Result<Store, StoreError> {
        let db = match &config.backend {
            StoreBackend::Sqlite { path } => {
                sqlite::connect(path, config.max_connections, config.acquire_timeout).await?
            }
            StoreBackend::Postgres { url } => postgres::connect(url, config).await?,
        };
        let store = Store {
            db,
            passwords: password::Passwords::new(config.password_hash_concurrency),
            sealer: std::sync::Arc::new(keys::Sealer::from_secret(secret)?),
            audit_file: config.audit_file.clone().map(std::sync::Arc::new),
            limits: (
                config.max_connections,
                config.acquire_timeout,
                config.statement_timeout,
            ),
            legacy: None,
        };
        let result = async {
            migrate::run(&store.db).await?;
            keys::check_secret(&store.db, &store.sealer).await
        }
        .await;
        match result {
            Ok(()) => Ok(store),
            Err(error) => {
                store.close().await;
                Err(error)
            }
        }
    }

    /// Whether several instances share this store's state (PostgreSQL, a cluster) rather than
    /// one instance owning it (SQLite): counts that must hold across the cluster (the login
    /// back-off) then live in the store instead of in memory.
    pub fn shares_state(&self) -> bool {
        self.db.is_postgres()
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        if self.db.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// Background upkeep for a serving instance, forever: activates signing keys whose
    /// activation time has come (every 30 s) and deletes expired rows (hourly). Errors are
    /// logged and retried on the next round.
    pub async fn maintain(self) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        let mut rounds: u64 = 0;
        loop {
            tick.tick().await;
            match self.activate_due_keys(now()).await {
                Ok(kids) => {
                    for kid in kids {
                        tracing::info!(%kid, "signing key activated");
                        let event = AuditEvent::new("keys.activate")
                            .actor("system:key-rotation")
                            .subject(format!("key:{kid}"));
                        if let Err(error) = self.audit(&event, now()).await {
                            tracing::warn!(%error, "cannot write the audit record");
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot activate due signing keys"),
            }
            if rounds.is_multiple_of(120)
                && let Err(error) = self.purge_expired(now()).await
            {
                tracing::warn!(%error, "cannot purge expired tokens");
            }
            rounds += 1;
        }
    }

    /// Tells every instance that revocations or keys changed, so they reload now instead of
    /// at their next periodic refresh: PostgreSQL `NOTIFY`. A no-op on SQLite (one instance),
    /// and a failure (a database without `LISTEN/NOTIFY`, e.g. CockroachDB) is only logged:
    /// the periodic reload still covers it.
    pub async fn announce_change(&self) {
        if !self.db.is_postgres() {
            return;
        }
        let notify = db::q("SELECT pg_notify('authgate_changes', '')");
        if let Err(error) = self.db.fetch_optional(notify).await {
            tracing::debug!(%error, "NOTIFY failed; other instances pick the change up by polling");
        }
    }

    /// Change announcements from other instances (PostgreSQL `LISTEN`); `None` on SQLite.
    pub async fn change_listener(&self) -> Result<Option<ChangeListener>, StoreError> {
        match &self.db {
            db::Pool::Postgres(pool) => {
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                listener.listen("authgate_changes").await?;
                Ok(Some(ChangeListener(listener)))
            }
            db::Pool::Sqlite(..) => Ok(None),
        }
    }

    /// Is the database answering (a trivial query within `timeout`), and how is the pool used?
    pub async fn health(&self, timeout: std::time::Duration) -> StoreHealth {
        let started = std::time::Instant::now();
        let ping = tokio::time::timeout(timeout, self.db.fetch_optional(db::q("SELECT 1"))).await;
        let (open, idle) = self.db.usage();
        StoreHealth {
            backend: self.backend(),
            reachable: matches!(ping, Ok(Ok(_))),
            latency: started.elapsed(),
            open_connections: open,
            idle_connections: idle,
            max_connections: self.limits.0,
            acquire_timeout: self.limits.1,
            statement_timeout: self.limits.2,
        }
    }

    /// Waits for in-flight operations and closes every connection (the legacy users table's
    /// too). Operations after this fail.
    pub async fn close(&self) {
        self.db.close().await;
        if let Some(legacy) = &self.legacy {
            legacy.close().await;
        }
    }
}

/// The current time in Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `Duration` → whole seconds as stored.
pub fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
