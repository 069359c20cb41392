//! `[store]`: where state lives (SQLite file or PostgreSQL URL) and how private signing keys are
//! encrypted at rest. Validation only: nothing here opens a file or a connection.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::raw::RawStore;
use super::{ConfigError, Resolver};

/// The shipped default: one SQLite file beside the config.
pub const DEFAULT_STORE_URL: &str = "sqlite://data/authgate.db";
/// The environment variable read for the key-encryption secret unless `key_secret_env` says another.
pub const DEFAULT_KEY_SECRET_ENV: &str = "AUTHGATE_KEY_SECRET";

/// `store.url` (default `sqlite://data/authgate.db`): which database holds the state. Bound at
/// start; a reload that changes it asks for a restart.
#[derive(Clone)]
pub enum StoreBackend {
    /// A database file; relative paths in the URL are resolved against the config's directory.
    Sqlite {
        /// The file (created on first start, mode 0600, with its directory).
        path: PathBuf,
    },
    /// A `postgres://` / `postgresql://` URL, kept as written (it may carry a password, so
    /// `Debug` and `Display` redact it).
    Postgres {
        /// The URL as written, password included: never printed as is.
        url: String,
    },
}

impl StoreBackend {
    /// The backend's name in logs, metrics labels and `/readyz` (`sqlite`, `postgres`).
    pub fn name(&self) -> &'static str {
        match self {
            StoreBackend::Sqlite { .. } => "sqlite",
            StoreBackend::Postgres { .. } => "postgres",
        }
    }
}

impl fmt::Display for StoreBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreBackend::Sqlite { path } => write!(f, "sqlite://{}", path.display()),
            StoreBackend::Postgres { url } => f.write_str(&redact_password(url)),
        }
    }
}

impl fmt::Debug for StoreBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `[store]` (plus `[audit] file`): what `store::Store::open` needs.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Where the state lives.
    pub backend: StoreBackend,
    /// Connections in the pool.
    pub max_connections: u32,
    /// The environment variable holding the secret that encrypts private signing keys.
    pub key_secret_env: String,
    /// SQLite only, when that variable is unset: a random secret generated on first start
    /// (mode 0600). Default: `key-secret` beside the database file.
    pub key_secret_file: PathBuf,
    /// Password hashes computed at once (each one ~19 MiB and ~60 ms of one core).
    pub password_hash_concurrency: usize,
    /// `keys rotate`: how long a new key is published (pending) before it starts signing.
    pub key_activation_delay: Duration,
    /// How long a request waits for a pooled connection before the store counts as
    /// unreachable (token endpoints then answer 503).
    pub acquire_timeout: Duration,
    /// PostgreSQL: the server cancels a statement running longer (`statement_timeout`).
    pub statement_timeout: Duration,
    /// `[audit] file`: every audit record is also appended here as a JSON line.
    pub audit_file: Option<PathBuf>,
}

impl StoreConfig {
    /// The defaults for a store at `backend` (tests and tools that build a config in code).
    pub fn new(backend: StoreBackend) -> Self {
        let key_secret_file = match &backend {
            StoreBackend::Sqlite { path } => path.with_file_name("key-secret"),
            StoreBackend::Postgres { .. } => PathBuf::new(),
        };
        StoreConfig {
            backend,
            max_connections: 8,
            key_secret_env: DEFAULT_KEY_SECRET_ENV.to_owned(),
            key_secret_file,
            password_hash_concurrency: default_hash_concurrency(),
            key_activation_delay: Duration::from_secs(3600),
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
            audit_file: None,
        }
    }
}

fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub(super) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl Resolver {
    pub(super) fn store(&self, raw: &RawStore) -> Result<StoreConfig, ConfigError> {
        let url = raw.url.as_deref().unwrap_or(DEFAULT_STORE_URL).trim();
        let backend = self.store_backend(url)?;
        let mut store = StoreConfig::new(backend);
        if let Some(n) = raw.max_connections {
            if n == 0 {
                return Err(self.err("store.max_connections", "must be at least 1"));
            }
            store.max_connections = n;
        }
        if let Some(name) = &raw.key_secret_env {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(self.err(
                    "store.key_secret_env",
                    format!("`{name}` is not an environment variable name"),
                ));
            }
            store.key_secret_env = name.clone();
        }
        if let Some(file) = &raw.key_secret_file {
            store.key_secret_file = self.path(file);
        }
        for (key, value, field) in [
            (
                "store.acquire_timeout",
                raw.acquire_timeout.as_deref(),
                &mut store.acquire_timeout,
            ),
            (
                "store.statement_timeout",
                raw.statement_timeout.as_deref(),
                &mut store.statement_timeout,
            ),
        ] {
            let d = self.duration(key, value, *field)?;
            if d.as_millis() < 10 {
                return Err(self.err(key, "must be at least 10ms"));
            }
            *field = d;
        }
        if let Some(n) = raw.password_hash_concurrency {
            if n == 0 {
                return Err(self.err("store.password_hash_concurrency", "must be at least 1"));
            }
            store.password_hash_concurrency = n;
        }
        store.key_activation_delay = self.duration(
            "store.key_activation_delay",
            raw.key_activation_delay.as_deref(),
            store.key_activation_delay,
        )?;
        Ok(store)
    }

    fn store_backend(&self, url: &str) -> Result<StoreBackend, ConfigError> {
        if let Some(rest) = url.strip_prefix("sqlite://") {
            if rest.is_empty() || rest.contains('?') || rest.starts_with(':') {
                return Err(self.err(
                    "store.url",
                    format!("`{url}` is not a SQLite file URL like \"sqlite://data/authgate.db\""),
                ));
            }
            return Ok(StoreBackend::Sqlite {
                path: self.path(rest),
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreBackend::Postgres {
                url: url.to_owned(),
            });
        }
        Err(self.err(
            "store.url",
            format!(
                "`{}` is neither \"sqlite://PATH\" nor \"postgres://…\"",
                redact_password(url)
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::redact_password;

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_password("postgres://app:hunter2@db:5432/auth"),
            "postgres://app:***@db:5432/auth"
        );
        assert_eq!(
            redact_password("postgres://app@db/auth"),
            "postgres://app@db/auth"
        );
        assert_eq!(redact_password("postgres://db/a@b"), "postgres://db/a@b");
    }
}
