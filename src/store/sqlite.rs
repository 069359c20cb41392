//! Connecting to the embedded SQLite store.
//!
//! Durability: WAL journal with `synchronous = FULL`. In WAL mode `NORMAL` already survives a
//! killed process (a commit is in the WAL before `COMMIT` returns), but it may lose the last
//! transactions on power loss; `FULL` syncs the WAL on every commit, so a refresh token or code
//! handed to a client exists after a power cut too. The cost is one fsync per write
//! transaction, which the embedded (single-node) deployment can afford.

use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::StoreError;
use super::db::Pool;

pub(crate) async fn connect(
    path: &Path,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<Pool, StoreError> {
    prepare_file(path)?;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .connect_with(options)
        .await
        .map_err(|e| StoreError::Io {
            context: format!("cannot open {}", path.display()),
            source: std::io::Error::other(e.to_string()),
        })?;
    Ok(Pool::Sqlite(pool, Arc::new(Semaphore::new(1))))
}

/// Creates the directory (0700) and an empty database file (0600) on first start, so the
/// password hashes and tokens in it are never readable by other users, whatever the umask.
fn prepare_file(path: &Path) -> Result<(), StoreError> {
    let io = |context: String, source| StoreError::Io { context, source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io(format!("cannot create {}", dir.display()), e))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(format!("cannot create {}", path.display()), e)),
    }
}
