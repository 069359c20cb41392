//! A PostgreSQL schema of a test's own on `AUTHGATE_TEST_DATABASE_URL`, dropped when the guard
//! goes (also when the test panics). The tests that use it are ignored without that variable
//! (`build.rs` sets the `no_pg` cfg).

/// A freshly created schema; [`PgSchema::url`] points a store at it.
pub struct PgSchema {
    /// `AUTHGATE_TEST_DATABASE_URL` as given.
    pub base: String,
    /// The schema's name: the caller's prefix and a random suffix.
    pub name: String,
    /// `base` with `options[search_path]=name`: a store opened on it lives in the schema.
    pub url: String,
}

impl PgSchema {
    /// Creates `{prefix}_{uuid}` on `AUTHGATE_TEST_DATABASE_URL` (panics when it is unset).
    pub async fn create(prefix: &str) -> PgSchema {
        let base = std::env::var("AUTHGATE_TEST_DATABASE_URL").expect(
            "set AUTHGATE_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test)",
        );
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={name}");
        PgSchema { base, name, url }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop runs inside the test's runtime (or while unwinding): use a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
                    .await
                    .unwrap();
                let sql = format!("DROP SCHEMA IF EXISTS {name} CASCADE");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            });
        })
        .join();
    }
}
