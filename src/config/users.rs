//! `[users.sql]`: a users table owned by another application (a Laravel `users` table in MySQL,
//! say), consulted for logins the local store does not answer. Validation only: nothing here
//! opens a connection. The queries are the operator's text; what is checked is the database
//! URL and the placeholders, so a query that binds the wrong number of values fails at
//! `authgate check`, not at the first login.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::raw::RawUsersSql;
use super::store::redact_password;
use super::{ConfigError, Resolver};

/// Where the legacy table lives.
#[derive(Clone)]
pub enum LegacyBackend {
    /// `mysql://` or `mariadb://` (MySQL and MariaDB).
    MySql {
        /// The URL as written, password included: printed only redacted.
        url: String,
    },
    /// `postgres://` or `postgresql://`.
    Postgres {
        /// The URL as written, password included: printed only redacted.
        url: String,
    },
    /// A database file; a relative path is resolved against the config's directory.
    Sqlite {
        /// The database file (opened read-only without an `update_query`).
        path: PathBuf,
    },
}

impl LegacyBackend {
    /// The backend's name in logs (`mysql`, `postgres`, `sqlite`).
    pub fn name(&self) -> &'static str {
        match self {
            LegacyBackend::MySql { .. } => "mysql",
            LegacyBackend::Postgres { .. } => "postgres",
            LegacyBackend::Sqlite { .. } => "sqlite",
        }
    }
}

/// The URL with its password replaced by `***`: the only way it is ever printed.
impl fmt::Display for LegacyBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LegacyBackend::MySql { url } | LegacyBackend::Postgres { url } => {
                f.write_str(&redact_password(url))
            }
            LegacyBackend::Sqlite { path } => write!(f, "sqlite://{}", path.display()),
        }
    }
}

impl fmt::Debug for LegacyBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An operator-written statement and how many values it binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlText {
    /// The statement exactly as the operator wrote it.
    pub sql: String,
    /// Values to bind, in order (each `?` is one; `$1 … $n` are n).
    pub params: usize,
}

/// `[users.sql]`: a users table of another application, asked for logins the local store does
/// not answer (`store/legacy.rs`).
#[derive(Debug, Clone)]
pub struct LegacyUsersConfig {
    /// `url`: the legacy database.
    pub backend: LegacyBackend,
    /// Returns at most one row for the login name bound to every placeholder.
    pub query: SqlText,
    /// Binds the new Argon2id hash, the user id and (optionally) the hash that was verified.
    /// `None`: the table is only read (and the connection is opened read-only).
    pub update_query: Option<SqlText>,
    /// `max_connections` (default 4): connections to the legacy database.
    pub max_connections: u32,
    /// Bound on connecting and on each statement.
    pub timeout: Duration,
}

/// How a statement marks its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholders {
    None,
    /// `?` (MySQL, SQLite): this many.
    Bare(usize),
    /// `$1 … $n` (PostgreSQL, SQLite) or `?1 … ?n` (SQLite): the highest n.
    Numbered(usize),
}

/// Finds the placeholders outside quotes and comments.
fn placeholders(sql: &str) -> Result<Placeholders, String> {
    let (mut bare, mut numbered) = (0usize, 0usize);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                while let Some(inner) = chars.next() {
                    if inner == '\\' {
                        chars.next();
                    } else if inner == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                chars.by_ref().find(|&n| n == '\n');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for inner in chars.by_ref() {
                    if last == '*' && inner == '/' {
                        break;
                    }
                    last = inner;
                }
            }
            '?' | '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    digits.push(d);
                }
                match digits.parse::<usize>() {
                    Ok(n) => numbered = numbered.max(n),
                    Err(_) if c == '?' => bare += 1,
                    Err(_) => {}
                }
            }
            _ => {}
        }
    }
    match (bare, numbered) {
        (0, 0) => Ok(Placeholders::None),
        (n, 0) => Ok(Placeholders::Bare(n)),
        (0, n) => Ok(Placeholders::Numbered(n)),
        _ => Err("mixes `?` with numbered placeholders".to_owned()),
    }
}

impl Resolver {
    pub(super) fn legacy_users(&self, raw: &RawUsersSql) -> Result<LegacyUsersConfig, ConfigError> {
        let backend = self.legacy_backend(raw.url.trim())?;
        let query = self.legacy_query(&backend, &raw.query)?;
        let update_query = raw
            .update_query
            .as_deref()
            .map(|sql| self.legacy_update(&backend, sql))
            .transpose()?;
        let max_connections = raw.max_connections.unwrap_or(4);
        if max_connections == 0 {
            return Err(self.err("users.sql.max_connections", "must be at least 1"));
        }
        let timeout = self.duration(
            "users.sql.timeout",
            raw.timeout.as_deref(),
            Duration::from_secs(5),
        )?;
        if timeout.is_zero() {
            return Err(self.err("users.sql.timeout", "must be more than 0s"));
        }
        Ok(LegacyUsersConfig {
            backend,
            query,
            update_query,
            max_connections,
            timeout,
        })
    }

    fn legacy_backend(&self, url: &str) -> Result<LegacyBackend, ConfigError> {
        if let Some(rest) = url.strip_prefix("sqlite://") {
            if rest.is_empty() || rest.contains('?') || rest.starts_with(':') {
                return Err(self.err(
                    "users.sql.url",
                    format!("`{url}` is not a SQLite file URL like \"sqlite://legacy.db\""),
                ));
            }
            return Ok(LegacyBackend::Sqlite {
                path: self.path(rest),
            });
        }
        let url_owned = url.to_owned();
        if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            return Ok(LegacyBackend::MySql { url: url_owned });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(LegacyBackend::Postgres { url: url_owned });
        }
        Err(self.err(
            "users.sql.url",
            format!(
                "`{}` is not a \"mysql://…\", \"postgres://…\" or \"sqlite://PATH\" URL",
                redact_password(url)
            ),
        ))
    }

    /// Checks the placeholder style against the backend; returns the placeholders found.
    fn legacy_placeholders(
        &self,
        key: &str,
        backend: &LegacyBackend,
        sql: &str,
    ) -> Result<Placeholders, ConfigError> {
        if sql.trim().is_empty() {
            return Err(self.err(key, "must not be empty"));
        }
        let found = placeholders(sql).map_err(|m| self.err(key, m))?;
        match (backend, found) {
            (LegacyBackend::Postgres { .. }, Placeholders::Bare(_)) => Err(self.err(
                key,
                "PostgreSQL numbers its placeholders: write $1, $2, … instead of ?",
            )),
            (LegacyBackend::MySql { .. }, Placeholders::Numbered(_)) => Err(self.err(
                key,
                "MySQL placeholders are `?` (one per value, in order), not $1",
            )),
            _ => Ok(found),
        }
    }

    fn legacy_query(&self, backend: &LegacyBackend, sql: &str) -> Result<SqlText, ConfigError> {
        const KEY: &str = "users.sql.query";
        let params = match self.legacy_placeholders(KEY, backend, sql)? {
            Placeholders::None => {
                return Err(self.err(KEY, "must bind the login name ($1 or ?)"));
            }
            Placeholders::Bare(n) => n,
            Placeholders::Numbered(1) => 1,
            Placeholders::Numbered(_) => {
                return Err(self.err(KEY, "binds one value, the login name: use only $1"));
            }
        };
        Ok(SqlText {
            sql: sql.to_owned(),
            params,
        })
    }

    fn legacy_update(&self, backend: &LegacyBackend, sql: &str) -> Result<SqlText, ConfigError> {
        const KEY: &str = "users.sql.update_query";
        match self.legacy_placeholders(KEY, backend, sql)? {
            Placeholders::Bare(n @ 2..=3) | Placeholders::Numbered(n @ 2..=3) => Ok(SqlText {
                sql: sql.to_owned(),
                params: n,
            }),
            _ => Err(self.err(
                KEY,
                "binds the new hash, the user id and optionally the verified old hash \
                 (in that order: ? ? ?, or $1 $2 $3)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Placeholders, placeholders};

    #[test]
    fn placeholders_outside_quotes_and_comments_are_counted() {
        let sql = "SELECT id FROM users WHERE ? IN (name, email) -- or ?\n AND note <> 'why?'";
        assert_eq!(placeholders(sql), Ok(Placeholders::Bare(1)));
        let sql = "SELECT 1 FROM t WHERE a = ? /* ? */ OR b = ? AND c = \"?\" AND d = `?`";
        assert_eq!(placeholders(sql), Ok(Placeholders::Bare(2)));
        let sql = "UPDATE u SET password = $1 WHERE id = $2 AND password = $3 AND x <> '$4'";
        assert_eq!(placeholders(sql), Ok(Placeholders::Numbered(3)));
        assert_eq!(placeholders("SELECT 'it\\'s ?'"), Ok(Placeholders::None));
        assert_eq!(placeholders("SELECT ?1, ?1"), Ok(Placeholders::Numbered(1)));
        assert!(placeholders("SELECT ?, $2").is_err());
        // `$` not followed by digits (dollar quoting, a literal) is no placeholder.
        assert_eq!(placeholders("SELECT $tag$"), Ok(Placeholders::None));
    }
}
