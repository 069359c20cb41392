//! The connection to another application's database, and the only code besides `db.rs` that
//! executes SQL: the operator's two statements from `[users.sql]`, nothing else. Rows come
//! back as a map of column name → [`Value`], decoded whatever the column's SQL type (MySQL's
//! `BIGINT UNSIGNED` and `TINYINT(1)`, PostgreSQL's `int4`, SQLite's dynamic types), so the
//! operator's query decides the columns and `legacy.rs` never sees a backend type.

use std::collections::HashMap;
use std::str::FromStr as _;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{
    AssertSqlSafe, Column as _, Database, Encode, Executor as _, MySql, Postgres, Row as _, Sqlite,
    Type,
};

use crate::config::{LegacyBackend, LegacyUsersConfig};
use crate::store::StoreError;

/// A column's value, whatever its SQL type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
    /// A type nothing here reads (a date, a decimal, …).
    Other,
}

/// One row: lower-cased column name → value.
pub(super) type Columns = HashMap<String, Value>;

/// A value to bind.
pub(super) enum Arg {
    Int(i64),
    Text(String),
}

#[derive(Clone)]
pub(super) enum ForeignPool {
    MySql(MySqlPool),
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl ForeignPool {
    /// A pool that connects on first use (the gateway starts while the other database is
    /// down; only legacy logins fail meanwhile). Without an update query every session is
    /// read-only.
    pub(super) fn lazy(config: &LegacyUsersConfig) -> Result<ForeignPool, StoreError> {
        let read_only = config.update_query.is_none();
        let (max, timeout) = (config.max_connections, config.timeout);
        Ok(match &config.backend {
            LegacyBackend::MySql { url } => {
                let options = MySqlConnectOptions::from_str(url)?;
                let pool = MySqlPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(timeout)
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            if read_only {
                                conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
                            }
                            Ok(())
                        })
                    })
                    .connect_lazy_with(options);
                ForeignPool::MySql(pool)
            }
            LegacyBackend::Postgres { url } => {
                let mut options = PgConnectOptions::from_str(url)?;
                if read_only {
                    options = options.options([("default_transaction_read_only", "on")]);
                }
                let pool = PgPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(timeout)
                    .connect_lazy_with(options);
                ForeignPool::Postgres(pool)
            }
            LegacyBackend::Sqlite { path } => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .read_only(read_only)
                    .busy_timeout(timeout);
                let pool = SqlitePoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(timeout)
                    .connect_lazy_with(options);
                ForeignPool::Sqlite(pool)
            }
        })
    }

    /// The first row `sql` returns, if any.
    pub(super) async fn first_row(
        &self,
        sql: &str,
        args: Vec<Arg>,
    ) -> Result<Option<Columns>, StoreError> {
        Ok(match self {
            ForeignPool::MySql(pool) => bind::<MySql>(sql, args)
                .fetch_optional(pool)
                .await?
                .map(|row| columns(&row, mysql_value)),
            ForeignPool::Postgres(pool) => bind::<Postgres>(sql, args)
                .fetch_optional(pool)
                .await?
                .map(|row| columns(&row, pg_value)),
            ForeignPool::Sqlite(pool) => bind::<Sqlite>(sql, args)
                .fetch_optional(pool)
                .await?
                .map(|row| columns(&row, sqlite_value)),
        })
    }

    /// Runs `sql`; returns the rows it changed.
    pub(super) async fn execute(&self, sql: &str, args: Vec<Arg>) -> Result<u64, StoreError> {
        Ok(match self {
            ForeignPool::MySql(pool) => bind::<MySql>(sql, args)
                .execute(pool)
                .await?
                .rows_affected(),
            ForeignPool::Postgres(pool) => bind::<Postgres>(sql, args)
                .execute(pool)
                .await?
                .rows_affected(),
            ForeignPool::Sqlite(pool) => bind::<Sqlite>(sql, args)
                .execute(pool)
                .await?
                .rows_affected(),
        })
    }

    pub(super) async fn close(&self) {
        match self {
            ForeignPool::MySql(pool) => pool.close().await,
            ForeignPool::Postgres(pool) => pool.close().await,
            ForeignPool::Sqlite(pool) => pool.close().await,
        }
    }
}

fn bind<DB: Database>(sql: &str, args: Vec<Arg>) -> sqlx::query::Query<'static, DB, DB::Arguments>
where
    i64: for<'a> Encode<'a, DB> + Type<DB>,
    String: for<'a> Encode<'a, DB> + Type<DB>,
{
    let mut query = sqlx::query::<DB>(AssertSqlSafe(sql.to_owned()));
    for arg in args {
        query = match arg {
            Arg::Int(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
        };
    }
    query
}

fn columns<R: sqlx::Row>(row: &R, value: fn(&R, usize) -> Value) -> Columns {
    row.columns()
        .iter()
        .map(|c| (c.name().to_ascii_lowercase(), value(row, c.ordinal())))
        .collect()
}

/// The first of the listed types the column decodes as.
macro_rules! first_decoding {
    ($row:expr, $i:expr, $($ty:ty => $wrap:expr),+ $(,)?) => {{
        $(
            if let Ok(v) = $row.try_get::<Option<$ty>, _>($i) {
                return v.map_or(Value::Null, $wrap);
            }
        )+
        Value::Other
    }};
}

fn text_of_bytes(bytes: Vec<u8>) -> Value {
    String::from_utf8(bytes).map_or(Value::Other, Value::Text)
}

fn mysql_value(row: &MySqlRow, i: usize) -> Value {
    // Integers before `bool`: sqlx decodes every MySQL integer type as a `bool`.
    first_decoding!(row, i,
        i64 => Value::Int,
        u64 => |v: u64| i64::try_from(v).map_or(Value::Other, Value::Int),
        String => Value::Text,
        Vec<u8> => text_of_bytes,
        bool => Value::Bool,
    )
}

fn pg_value(row: &PgRow, i: usize) -> Value {
    first_decoding!(row, i,
        i64 => Value::Int,
        i32 => |v: i32| Value::Int(v.into()),
        i16 => |v: i16| Value::Int(v.into()),
        bool => Value::Bool,
        String => Value::Text,
    )
}

fn sqlite_value(row: &SqliteRow, i: usize) -> Value {
    first_decoding!(row, i,
        i64 => Value::Int,
        String => Value::Text,
        Vec<u8> => text_of_bytes,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::SqlText;

    fn config(backend: LegacyBackend, update: bool) -> LegacyUsersConfig {
        let text = |sql: &str, params| SqlText {
            sql: sql.to_owned(),
            params,
        };
        LegacyUsersConfig {
            backend,
            query: text("SELECT id FROM users WHERE email = $1", 1),
            update_query: update.then(|| text("UPDATE users SET password = $1 WHERE id = $2", 2)),
            max_connections: 1,
            timeout: Duration::from_secs(10),
        }
    }

    /// Without an update query the session refuses writes; with one it allows them.
    async fn read_only_unless_updating(backend: LegacyBackend, insert: &str) {
        let read_only = ForeignPool::lazy(&config(backend.clone(), false)).unwrap();
        let error = read_only.execute(insert, Vec::new()).await;
        assert!(error.is_err(), "{} accepted a write", backend.name());
        read_only.close().await;
        let writable = ForeignPool::lazy(&config(backend, true)).unwrap();
        assert_eq!(writable.execute(insert, Vec::new()).await.unwrap(), 1);
        writable.close().await;
    }

    #[tokio::test]
    async fn sqlite_sessions_are_read_only_without_an_update_query() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("legacy.db");
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let setup = SqlitePool::connect_with(options).await.unwrap();
        setup.execute("CREATE TABLE t (x INTEGER)").await.unwrap();
        setup.close().await;
        read_only_unless_updating(LegacyBackend::Sqlite { path }, "INSERT INTO t VALUES (1)").await;
    }

    #[tokio::test]
    #[cfg_attr(no_mysql, ignore = "needs MariaDB/MySQL: set AUTHGATE_TEST_MYSQL_URL")]
    async fn mysql_sessions_are_read_only_without_an_update_query() {
        let table = format!("authgate_ro_{}", uuid::Uuid::new_v4().simple());
        let base = std::env::var("AUTHGATE_TEST_MYSQL_URL").expect("AUTHGATE_TEST_MYSQL_URL");
        let base = base.trim_end_matches('/');
        let setup = MySqlPool::connect(base).await.unwrap();
        setup
            .execute(AssertSqlSafe(format!("CREATE DATABASE {table}")))
            .await
            .unwrap();
        let url = format!("{base}/{table}");
        let db = MySqlPool::connect(&url).await.unwrap();
        db.execute("CREATE TABLE t (x INT)").await.unwrap();
        db.close().await;
        let insert = "INSERT INTO t VALUES (1)";
        read_only_unless_updating(LegacyBackend::MySql { url }, insert).await;
        setup
            .execute(AssertSqlSafe(format!("DROP DATABASE {table}")))
            .await
            .unwrap();
    }

    #[tokio::test]
    #[cfg_attr(no_pg, ignore = "needs PostgreSQL: set AUTHGATE_TEST_DATABASE_URL")]
    async fn postgres_sessions_are_read_only_without_an_update_query() {
        let table = format!("authgate_ro_{}", uuid::Uuid::new_v4().simple());
        let url = std::env::var("AUTHGATE_TEST_DATABASE_URL").expect("AUTHGATE_TEST_DATABASE_URL");
        let setup = PgPool::connect(&url).await.unwrap();
        let create = format!("CREATE TABLE {table} (x INT)");
        setup.execute(AssertSqlSafe(create)).await.unwrap();
        let insert = format!("INSERT INTO {table} VALUES (1)");
        read_only_unless_updating(LegacyBackend::Postgres { url }, &insert).await;
        let drop = format!("DROP TABLE {table}");
        setup.execute(AssertSqlSafe(drop)).await.unwrap();
    }
}
