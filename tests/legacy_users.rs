//! `[users.sql]`: users of an existing Laravel application log in through the gateway's token
//! endpoint against its `users` table (`$2y$10$` bcrypt hashes), in MariaDB/MySQL
//! (`AUTHGATE_TEST_MYSQL_URL`, e.g. `mysql://root@127.0.0.1:3306`), PostgreSQL
//! (`AUTHGATE_TEST_DATABASE_URL`) and SQLite (always). Each run creates its own database or
//! schema and drops it afterwards. Without the variable a backend's tests say so on stderr and
//! pass.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::*;
use support::{GatewayConfig, Resp};

const LEGACY_PASSWORD: &str = "laravel secret 1";
const TAYLOR: i64 = 5001;
const ADA: i64 = 5002;
const GROUP: i64 = 42;

enum Backend {
    MySql {
        base: String,
        database: String,
    },
    Postgres {
        base: String,
        schema: String,
    },
    Sqlite {
        _dir: tempfile::TempDir,
        path: String,
    },
}

/// A Laravel-style `users` table in a database of its own.
struct LegacyDb {
    backend: Backend,
}

fn laravel_hash(password: &str) -> String {
    bcrypt::hash_with_result(password, 10)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY)
}

impl LegacyDb {
    async fn mysql() -> LegacyDb {
        let base = std::env::var("AUTHGATE_TEST_MYSQL_URL")
            .expect("set AUTHGATE_TEST_MYSQL_URL (e.g. mysql://root@127.0.0.1:3306)");
        let base = base.trim_end_matches('/').to_owned();
        let database = format!("authgate_legacy_{}", uuid::Uuid::new_v4().simple());
        let db = LegacyDb {
            backend: Backend::MySql { base, database },
        };
        db.admin_exec(&format!("CREATE DATABASE {}", db.name()))
            .await;
        db.exec(
            "CREATE TABLE users (
                id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
                name VARCHAR(255) NOT NULL,
                email VARCHAR(255) NOT NULL UNIQUE,
                email_verified_at TIMESTAMP NULL,
                password VARCHAR(255) NOT NULL,
                remember_token VARCHAR(100) NULL,
                group_id INT NOT NULL DEFAULT 0,
                is_admin TINYINT(1) NOT NULL DEFAULT 0,
                created_at TIMESTAMP NULL,
                updated_at TIMESTAMP NULL
            ) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci",
        )
        .await;
        db.seed().await;
        db
    }

    async fn postgres() -> LegacyDb {
        let base = std::env::var("AUTHGATE_TEST_DATABASE_URL").expect(
            "set AUTHGATE_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test)",
        );
        let schema = format!("authgate_legacy_{}", uuid::Uuid::new_v4().simple());
        let db = LegacyDb {
            backend: Backend::Postgres { base, schema },
        };
        db.exec(&format!("CREATE SCHEMA {}", db.name())).await;
        db.exec(&format!(
            "CREATE TABLE {}.users (
                id BIGSERIAL PRIMARY KEY,
                name VARCHAR(255) NOT NULL,
                email VARCHAR(255) NOT NULL UNIQUE,
                email_verified_at TIMESTAMP NULL,
                password VARCHAR(255) NOT NULL,
                remember_token VARCHAR(100) NULL,
                group_id INTEGER NOT NULL DEFAULT 0,
                is_admin BOOLEAN NOT NULL DEFAULT FALSE,
                created_at TIMESTAMP NULL,
                updated_at TIMESTAMP NULL
            )",
            db.name()
        ))
        .await;
        db.seed().await;
        db
    }

    async fn sqlite() -> LegacyDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("laravel.sqlite").display().to_string();
        let db = LegacyDb {
            backend: Backend::Sqlite { _dir: dir, path },
        };
        db.exec(
            "CREATE TABLE users (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name VARCHAR NOT NULL,
                email VARCHAR NOT NULL UNIQUE,
                email_verified_at DATETIME NULL,
                password VARCHAR NOT NULL,
                remember_token VARCHAR NULL,
                group_id INTEGER NOT NULL DEFAULT 0,
                is_admin TINYINT(1) NOT NULL DEFAULT 0,
                created_at DATETIME NULL,
                updated_at DATETIME NULL
            )",
        )
        .await;
        db.seed().await;
        db
    }

    /// Taylor (group 42, verified e-mail), Ada (an admin), an `alice@example.com` whose e-mail
    /// a local user with a password also has, and a user whose id is local Bob's.
    async fn seed(&self) {
        let hash = laravel_hash(LEGACY_PASSWORD);
        assert!(hash.starts_with("$2y$10$"), "{hash}");
        let table = self.table();
        let verified = match self.backend {
            Backend::Sqlite { .. } => "'2024-01-02 03:04:05'",
            _ => "CURRENT_TIMESTAMP",
        };
        let admin = match self.backend {
            Backend::Postgres { .. } => "TRUE",
            _ => "1",
        };
        let not_admin = match self.backend {
            Backend::Postgres { .. } => "FALSE",
            _ => "0",
        };
        self.exec(&format!(
            "INSERT INTO {table} (id, name, email, email_verified_at, password, group_id, is_admin)
             VALUES ({TAYLOR}, 'Taylor Otwell', 'taylor@laravel.test', {verified}, '{hash}',
                     {GROUP}, {not_admin}),
                    ({ADA}, 'Ada Admin', 'ada@laravel.test', NULL, '{hash}', 1, {admin}),
                    (5003, 'Alice Legacy', 'alice@example.com', NULL, '{hash}', 9, {not_admin}),
                    ({BOB}, 'Bob Legacy', 'bob@laravel.test', NULL, '{hash}', 9, {not_admin})"
        ))
        .await;
    }

    fn name(&self) -> &str {
        match &self.backend {
            Backend::MySql { database, .. } => database,
            Backend::Postgres { schema, .. } => schema,
            Backend::Sqlite { path, .. } => path,
        }
    }

    fn table(&self) -> String {
        match &self.backend {
            Backend::Postgres { schema, .. } => format!("{schema}.users"),
            _ => "users".to_owned(),
        }
    }

    fn url(&self) -> String {
        match &self.backend {
            Backend::MySql { base, database } => format!("{base}/{database}"),
            Backend::Postgres { base, .. } => base.clone(),
            Backend::Sqlite { path, .. } => format!("sqlite://{path}"),
        }
    }

    /// The `[users.sql]` section: Laravel's columns aliased to the gateway's.
    fn section(&self, rehash: bool) -> String {
        let table = self.table();
        let columns = "id, email, name AS display_name, password, group_id, is_admin AS admin, \
                       email_verified_at IS NOT NULL AS mail_verified";
        let (query, update) = match self.backend {
            Backend::Postgres { .. } => (
                format!("SELECT {columns} FROM {table} WHERE lower(email) = lower($1)"),
                format!("UPDATE {table} SET password = $1 WHERE id = $2 AND password = $3"),
            ),
            Backend::MySql { .. } => (
                format!("SELECT {columns} FROM {table} WHERE email = ?"),
                format!("UPDATE {table} SET password = ? WHERE id = ? AND password = ?"),
            ),
            Backend::Sqlite { .. } => (
                format!("SELECT {columns} FROM {table} WHERE email = ? COLLATE NOCASE"),
                format!("UPDATE {table} SET password = ? WHERE id = ?"),
            ),
        };
        let update = if rehash {
            format!("update_query = {update:?}\n")
        } else {
            String::new()
        };
        format!(
            "[users.sql]\nurl = {:?}\nquery = {query:?}\n{update}timeout = \"10s\"",
            self.url()
        )
    }

    /// Runs `sql` in the test's database.
    async fn exec(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.backend {
            Backend::MySql { .. } => {
                let mut conn = mysql(&self.url()).await;
                sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            }
            Backend::Postgres { base, .. } => {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(base)
                    .await
                    .unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            }
            Backend::Sqlite { path, .. } => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true);
                let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
                    .await
                    .unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            }
        }
    }

    /// Runs `sql` on the MySQL server outside any database.
    async fn admin_exec(&self, sql: &str) {
        if let Backend::MySql { base, .. } = &self.backend {
            let mut conn = mysql(base).await;
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }

    /// The hash the legacy table holds for `id`.
    async fn password_of(&self, id: i64) -> String {
        use sqlx::Row as _;
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT password FROM {} WHERE id = {id}",
            self.table()
        ));
        match &self.backend {
            Backend::MySql { .. } => {
                let mut conn = mysql(&self.url()).await;
                let row = sqlx::query(sql).fetch_one(&mut conn).await.unwrap();
                row.get::<String, _>(0)
            }
            Backend::Postgres { base, .. } => {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(base)
                    .await
                    .unwrap();
                let row = sqlx::query(sql).fetch_one(&mut conn).await.unwrap();
                row.get::<String, _>(0)
            }
            Backend::Sqlite { path, .. } => {
                let url = format!("sqlite://{path}");
                let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
                    .await
                    .unwrap();
                let row = sqlx::query(sql).fetch_one(&mut conn).await.unwrap();
                row.get::<String, _>(0)
            }
        }
    }

    async fn drop(self) {
        match &self.backend {
            Backend::MySql { database, .. } => {
                self.admin_exec(&format!("DROP DATABASE {database}")).await;
            }
            Backend::Postgres { schema, .. } => {
                self.exec(&format!("DROP SCHEMA {schema} CASCADE")).await;
            }
            Backend::Sqlite { .. } => {}
        }
    }
}

async fn mysql(url: &str) -> sqlx::MySqlConnection {
    <sqlx::MySqlConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap()
}

async fn password_grant(s: &Setup, username: &str, password: &str) -> Resp {
    s.post(
        "/oauth2/token",
        Auth::Basic("web", SECRET),
        &[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ],
    )
    .await
}

/// Logs in; panics unless it succeeds. Returns the answer.
async fn legacy_login(s: &Setup, username: &str, password: &str) -> serde_json::Value {
    let r = password_grant(s, username, password).await;
    assert_eq!(r.status, 200, "login {username}: {}", r.text());
    r.json()
}

async fn gateway(db: &LegacyDb, rehash: bool) -> Setup {
    setup_with(GatewayConfig::new().section(&db.section(rehash))).await
}

/// Read-only: a Laravel user logs in, the token carries and injects the legacy id and group,
/// the mirror serves refresh and revocation, failures look alike, local users win, and the
/// legacy table is never written.
async fn read_only(db: &LegacyDb) {
    let s = gateway(db, false).await;

    // A Laravel user logs in by e-mail (spelt differently) through the token endpoint.
    let answer = legacy_login(&s, "  Taylor@Laravel.test ", LEGACY_PASSWORD).await;
    let access = answer["access_token"].as_str().unwrap();
    let taylor = claims(access);
    assert_eq!(taylor["sub"], TAYLOR.to_string(), "{taylor}");
    assert_eq!(taylor["gid"], GROUP, "{taylor}");
    let (status, headers) = s.echo_headers(access).await;
    assert_eq!(status, 200);
    let headers = headers.unwrap();
    assert_eq!(headers["user_id"], TAYLOR.to_string(), "{headers}");
    assert_eq!(headers["group_id"], GROUP.to_string(), "{headers}");

    // Mirrored under the legacy id, without a local password.
    let mirror = s.store.user(TAYLOR).await.unwrap();
    assert_eq!(mirror.email.as_deref(), Some("taylor@laravel.test"));
    assert_eq!(mirror.account, format!("legacy-{TAYLOR}"));
    assert_eq!(mirror.group_id, GROUP);
    assert!(!mirror.has_password);
    assert!(mirror.roles.is_empty());
    assert_eq!(
        mirror.profile.display_name.as_deref(),
        Some("Taylor Otwell")
    );
    assert!(mirror.profile.mail_verified);

    // A wrong password and an unknown user get the very same answer.
    let wrong = password_grant(&s, "taylor@laravel.test", "not the password").await;
    let unknown = password_grant(&s, "nobody@laravel.test", LEGACY_PASSWORD).await;
    assert_oauth_error(&wrong, 400, "invalid_grant");
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.json(), unknown.json());

    // The store finds the user again: refresh works, then per-user revocation ends it.
    let refresh = answer["refresh_token"].as_str().unwrap();
    let refreshed = s.refresh("web", refresh).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text());
    let refreshed = refreshed.json();
    assert_eq!(claims_sub(&refreshed), TAYLOR.to_string());
    let now = authgate::store::now();
    s.store.revoke_user_tokens(TAYLOR, now).await.unwrap();
    let next = refreshed["refresh_token"].as_str().unwrap();
    assert_oauth_error(&s.refresh("web", next).await, 400, "invalid_grant");

    // The second login (the mirror exists now) still asks the legacy table.
    let again = legacy_login(&s, "taylor@laravel.test", LEGACY_PASSWORD).await;
    assert_eq!(claims_sub(&again), TAYLOR.to_string());

    // The admin column maps to the admin role.
    let ada = legacy_login(&s, "ada@laravel.test", LEGACY_PASSWORD).await;
    let ada_claims = claims(ada["access_token"].as_str().unwrap());
    assert_eq!(ada_claims["sub"], ADA.to_string());
    assert_eq!(
        ada_claims["roles"],
        serde_json::json!(["admin"]),
        "{ada_claims}"
    );

    // A local user with a password wins over a legacy row with the same e-mail.
    let shadowed = password_grant(&s, "alice@example.com", LEGACY_PASSWORD).await;
    assert_eq!(shadowed.json(), unknown.json());
    let local = legacy_login(&s, "alice@example.com", PASSWORD).await;
    assert_eq!(claims_sub(&local), ALICE.to_string());

    // A legacy id that belongs to a local user with a password is refused, not merged.
    let clash = password_grant(&s, "bob@laravel.test", LEGACY_PASSWORD).await;
    assert_eq!(clash.status, 500, "{}", clash.text());
    assert_eq!(s.store.user(BOB).await.unwrap().account, "bob");
    assert_eq!(
        claims_sub(&legacy_login(&s, "bob", PASSWORD).await),
        BOB.to_string()
    );

    // Read-only: the legacy hashes are still Laravel's.
    assert!(db.password_of(TAYLOR).await.starts_with("$2y$10$"));

    // The e-mail moves to another legacy user: the stale mirror gives it up.
    let table = db.table();
    let hash = db.password_of(TAYLOR).await;
    db.exec(&format!(
        "UPDATE {table} SET email = 'taylor@old.test' WHERE id = {TAYLOR}"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO {table} (id, name, email, password, group_id)
         VALUES (5004, 'New Taylor', 'taylor@laravel.test', '{hash}', 3)"
    ))
    .await;
    let moved = legacy_login(&s, "taylor@laravel.test", LEGACY_PASSWORD).await;
    assert_eq!(claims_sub(&moved), "5004");
    let found = s.store.user_by_login("taylor@laravel.test").await.unwrap();
    assert_eq!((found.id, found.group_id), (5004, 3));
    let old = legacy_login(&s, "taylor@old.test", LEGACY_PASSWORD).await;
    assert_eq!(claims_sub(&old), TAYLOR.to_string());
    let mirror = s.store.user(TAYLOR).await.unwrap();
    assert_eq!(mirror.email.as_deref(), Some("taylor@old.test"));
}

/// With an update query, a good bcrypt password is rehashed to Argon2id in the legacy table,
/// and the next login verifies against the new hash.
async fn rehash(db: &LegacyDb) {
    let s = gateway(db, true).await;
    assert!(db.password_of(TAYLOR).await.starts_with("$2y$10$"));
    let first = legacy_login(&s, "taylor@laravel.test", LEGACY_PASSWORD).await;
    assert_eq!(claims_sub(&first), TAYLOR.to_string());
    let upgraded = db.password_of(TAYLOR).await;
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{upgraded}"
    );
    let second = legacy_login(&s, "taylor@laravel.test", LEGACY_PASSWORD).await;
    assert_eq!(claims_sub(&second), TAYLOR.to_string());
    assert_eq!(db.password_of(TAYLOR).await, upgraded, "rehashed once only");
    let wrong = password_grant(&s, "taylor@laravel.test", "not the password").await;
    assert_oauth_error(&wrong, 400, "invalid_grant");
    // Users nobody logged in as keep their bcrypt hash.
    assert!(db.password_of(ADA).await.starts_with("$2y$10$"));
}

fn claims_sub(answer: &serde_json::Value) -> String {
    claims(answer["access_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
#[cfg_attr(no_mysql, ignore = "needs MariaDB/MySQL: set AUTHGATE_TEST_MYSQL_URL")]
async fn mariadb_laravel_user_logs_in_read_only() {
    let db = LegacyDb::mysql().await;
    read_only(&db).await;
    db.drop().await;
}

#[tokio::test]
#[cfg_attr(no_mysql, ignore = "needs MariaDB/MySQL: set AUTHGATE_TEST_MYSQL_URL")]
async fn mariadb_rehash_upgrades_bcrypt_to_argon2id() {
    let db = LegacyDb::mysql().await;
    rehash(&db).await;
    db.drop().await;
}

#[tokio::test]
#[cfg_attr(no_pg, ignore = "needs PostgreSQL: set AUTHGATE_TEST_DATABASE_URL")]
async fn postgres_laravel_user_logs_in_read_only() {
    let db = LegacyDb::postgres().await;
    read_only(&db).await;
    db.drop().await;
}

#[tokio::test]
#[cfg_attr(no_pg, ignore = "needs PostgreSQL: set AUTHGATE_TEST_DATABASE_URL")]
async fn postgres_rehash_upgrades_bcrypt_to_argon2id() {
    let db = LegacyDb::postgres().await;
    rehash(&db).await;
    db.drop().await;
}

#[tokio::test]
async fn sqlite_laravel_user_logs_in_read_only() {
    let db = LegacyDb::sqlite().await;
    read_only(&db).await;
}

#[tokio::test]
async fn sqlite_rehash_upgrades_bcrypt_to_argon2id() {
    let db = LegacyDb::sqlite().await;
    rehash(&db).await;
}
