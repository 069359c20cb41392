//! The one place that executes SQL: a pool, a transaction and a row, each an enum over the two
//! backends. Store logic is written once against these; the SQL text is shared (`$1`
//! placeholders work on both) unless a query is built with [`Q::each`].
//!
//! Writes go through [`Pool::begin`]: on SQLite that is `BEGIN IMMEDIATE`, so a transaction
//! takes the write lock up front instead of failing when a read lock would have to be
//! upgraded; and writers take the pool's one write slot first, so they queue in process
//! instead of sleeping in SQLite's busy handler.

use sqlx::postgres::{PgPool, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Database, Decode, Encode, Postgres, Sqlite, Transaction, Type};

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::StoreError;

#[derive(Clone)]
pub(crate) enum Pool {
    /// The pool and its one write slot: SQLite has one writer at a time, and a writer that
    /// loses the race for the lock sleeps in SQLite's busy handler (back-offs of up to 100 ms),
    /// so write transactions queue here instead and start the moment the previous one ends.
    Sqlite(SqlitePool, Arc<Semaphore>),
    Postgres(PgPool),
}

pub(crate) enum Tx {
    /// The transaction and the pool's write slot, held until it commits or is dropped.
    Sqlite(Transaction<'static, Sqlite>, OwnedSemaphorePermit),
    Postgres(Transaction<'static, Postgres>),
}

pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

/// A bound value. `Null` carries the type so PostgreSQL can infer the parameter.
pub(crate) enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Bool(bool),
}

enum Sql {
    Both(&'static str),
    Each {
        sqlite: &'static str,
        postgres: &'static str,
    },
}

/// A query and its arguments, bound in order to `$1`, `$2`, …
pub(crate) struct Q {
    sql: Sql,
    args: Vec<Arg>,
}

/// A query whose text is the same on both backends.
pub(crate) fn q(sql: &'static str) -> Q {
    Q {
        sql: Sql::Both(sql),
        args: Vec::new(),
    }
}

impl Q {
    /// A query whose text differs between the backends.
    pub(crate) fn each(sqlite: &'static str, postgres: &'static str) -> Q {
        Q {
            sql: Sql::Each { sqlite, postgres },
            args: Vec::new(),
        }
    }
    pub(crate) fn int(mut self, v: i64) -> Q {
        self.args.push(Arg::Int(Some(v)));
        self
    }
    pub(crate) fn opt_int(mut self, v: Option<i64>) -> Q {
        self.args.push(Arg::Int(v));
        self
    }
    pub(crate) fn text(mut self, v: impl Into<String>) -> Q {
        self.args.push(Arg::Text(Some(v.into())));
        self
    }
    pub(crate) fn opt_text(mut self, v: Option<impl Into<String>>) -> Q {
        self.args.push(Arg::Text(v.map(Into::into)));
        self
    }
    pub(crate) fn bytes(mut self, v: impl Into<Vec<u8>>) -> Q {
        self.args.push(Arg::Bytes(Some(v.into())));
        self
    }
    pub(crate) fn opt_bytes(mut self, v: Option<Vec<u8>>) -> Q {
        self.args.push(Arg::Bytes(v));
        self
    }
    pub(crate) fn bool(mut self, v: bool) -> Q {
        self.args.push(Arg::Bool(v));
        self
    }

    fn text_for(&self, postgres: bool) -> &'static str {
        match self.sql {
            Sql::Both(sql) => sql,
            Sql::Each {
                sqlite,
                postgres: pg,
            } => {
                if postgres {
                    pg
                } else {
                    sqlite
                }
            }
        }
    }

    fn bind<DB: Database>(self, postgres: bool) -> sqlx::query::Query<'static, DB, DB::Arguments>
    where
        Option<i64>: for<'a> Encode<'a, DB> + Type<DB>,
        Option<String>: for<'a> Encode<'a, DB> + Type<DB>,
        Option<Vec<u8>>: for<'a> Encode<'a, DB> + Type<DB>,
        bool: for<'a> Encode<'a, DB> + Type<DB>,
    {
        let mut query = sqlx::query::<DB>(self.text_for(postgres));
        for arg in self.args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
                Arg::Bytes(v) => query.bind(v),
                Arg::Bool(v) => query.bind(v),
            };
        }
        query
    }
}

impl Pool {
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Pool::Postgres(_))
    }

    /// Open connections and how many of them are idle.
    pub(crate) fn usage(&self) -> (u32, usize) {
        match self {
            Pool::Sqlite(pool, _) => (pool.size(), pool.num_idle()),
            Pool::Postgres(pool) => (pool.size(), pool.num_idle()),
        }
    }

    /// A write transaction (`BEGIN IMMEDIATE` on SQLite).
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Pool::Sqlite(pool, writer) => {
                let slot = write_slot(writer).await;
                Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?, slot)
            }
            Pool::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// One writing statement in its own (implicit) transaction: a single round trip on
    /// PostgreSQL (no `BEGIN`/`COMMIT` around it); on SQLite it takes the pool's write slot
    /// first, like [`Pool::begin`]. What the statement returns, if anything.
    pub(crate) async fn write(&self, query: Q) -> Result<Option<Row>, StoreError> {
        Ok(match self {
            Pool::Sqlite(pool, writer) => {
                let _slot = write_slot(writer).await;
                query
                    .bind::<Sqlite>(false)
                    .fetch_optional(pool)
                    .await?
                    .map(Row::Sqlite)
            }
            Pool::Postgres(pool) => query
                .bind::<Postgres>(true)
                .fetch_optional(pool)
                .await?
                .map(Row::Postgres),
        })
    }

    /// One statement in its own (implicit) transaction.
    pub(crate) async fn execute(&self, query: Q) -> Result<u64, StoreError> {
        Ok(match self {
            Pool::Sqlite(pool, _) => query
                .bind::<Sqlite>(false)
                .execute(pool)
                .await?
                .rows_affected(),
            Pool::Postgres(pool) => query
                .bind::<Postgres>(true)
                .execute(pool)
                .await?
                .rows_affected(),
        })
    }

    pub(crate) async fn fetch_optional(&self, query: Q) -> Result<Option<Row>, StoreError> {
        Ok(match self {
            Pool::Sqlite(pool, _) => query
                .bind::<Sqlite>(false)
                .fetch_optional(pool)
                .await?
                .map(Row::Sqlite),
            Pool::Postgres(pool) => query
                .bind::<Postgres>(true)
                .fetch_optional(pool)
                .await?
                .map(Row::Postgres),
        })
    }

    pub(crate) async fn fetch_all(&self, query: Q) -> Result<Vec<Row>, StoreError> {
        Ok(match self {
            Pool::Sqlite(pool, _) => query
                .bind::<Sqlite>(false)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
            Pool::Postgres(pool) => query
                .bind::<Postgres>(true)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
        })
    }

    pub(crate) async fn close(&self) {
        match self {
            Pool::Sqlite(p, _) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// SQLite's one write slot (see [`Pool::Sqlite`]), held until the permit is dropped.
async fn write_slot(writer: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    Arc::clone(writer)
        .acquire_owned()
        .await
        .expect("the write slot's semaphore is never closed")
}

impl Tx {
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Tx::Postgres(_))
    }

    pub(crate) async fn execute(&mut self, query: Q) -> Result<u64, StoreError> {
        Ok(match self {
            Tx::Sqlite(tx, _) => query
                .bind::<Sqlite>(false)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            Tx::Postgres(tx) => query
                .bind::<Postgres>(true)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        })
    }

    pub(crate) async fn fetch_optional(&mut self, query: Q) -> Result<Option<Row>, StoreError> {
        Ok(match self {
            Tx::Sqlite(tx, _) => query
                .bind::<Sqlite>(false)
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Sqlite),
            Tx::Postgres(tx) => query
                .bind::<Postgres>(true)
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Postgres),
        })
    }

    /// Runs a multi-statement script (a migration).
    pub(crate) async fn execute_script(&mut self, script: &'static str) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx, _) => {
                sqlx::raw_sql(script).execute(&mut **tx).await?;
            }
            Tx::Postgres(tx) => {
                sqlx::raw_sql(script).execute(&mut **tx).await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx, slot) => {
                tx.commit().await?;
                // The next writer starts only once this one's commit is durable.
                drop(slot);
            }
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

impl Row {
    /// Column `name`, decoded as `T` (`i64`, `String`, `bool`, `Vec<u8>` or an `Option` of one).
    pub(crate) fn get<T>(&self, name: &str) -> Result<T, StoreError>
    where
        T: for<'r> Decode<'r, Sqlite>
            + Type<Sqlite>
            + for<'r> Decode<'r, Postgres>
            + Type<Postgres>,
    {
        use sqlx::Row as _;
        Ok(match self {
            Row::Sqlite(row) => row.try_get(name)?,
            Row::Postgres(row) => row.try_get(name)?,
        })
    }
}
