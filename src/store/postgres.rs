//! Connecting to a PostgreSQL store (clusters). The URL is passed to sqlx as written, so its
//! parameters work: `sslmode=verify-full`, `options[search_path]=authgate` for a schema of
//! its own, `application_name=…`.

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::StoreError;
use super::db::Pool;

pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<Pool, StoreError> {
    let options = PgConnectOptions::from_str(url)?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    Ok(Pool::Postgres(pool))
}
