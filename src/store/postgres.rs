//! Connecting to a PostgreSQL store (clusters). The URL is passed to sqlx as written, so its
//! parameters work: `sslmode=verify-full`, `options[search_path]=authgate` for a schema of
//! its own, `application_name=…`.

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::StoreError;
use super::db::Pool;
use crate::config::StoreConfig;

/// A pooled connection idle at least this long is pinged before it is used again.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

pub(crate) async fn connect(url: &str, config: &StoreConfig) -> Result<Pool, StoreError> {
    // `statement_timeout` is a session setting CockroachDB and YugabyteDB know too.
    let timeout_ms = config.statement_timeout.as_millis().to_string();
    let options =
        PgConnectOptions::from_str(url)?.options([("statement_timeout", timeout_ms.as_str())]);
    let pool = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        // sqlx pings every connection when it goes back to the pool, and by default again when
        // it is taken out: two extra round trips per statement outside a transaction. The
        // first already proves the connection alive when it went idle; ping on acquire only a
        // connection idle long enough for something to have happened to it since (a server
        // restart or failover, an idle timeout on the way).
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await?;
    Ok(Pool::Postgres(pool))
}
