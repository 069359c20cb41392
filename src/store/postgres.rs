//! Connecting to a PostgreSQL store (clusters). The URL is passed to sqlx as written, so its
//! parameters work: `sslmode=verify-full`, `options[search_path]=authgate` for a schema of
//! its own, `application_name=…`.

use std::str::FromStr as _;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::StoreError;
use super::db::Pool;
use crate::config::StoreConfig;

pub(crate) async fn connect(url: &str, config: &StoreConfig) -> Result<Pool, StoreError> {
    // `statement_timeout` is a session setting CockroachDB and YugabyteDB know too.
    let timeout_ms = config.statement_timeout.as_millis().to_string();
    let options =
        PgConnectOptions::from_str(url)?.options([("statement_timeout", timeout_ms.as_str())]);
    let pool = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .connect_with(options)
        .await?;
    Ok(Pool::Postgres(pool))
}
