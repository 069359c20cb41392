//! One conformance suite for every store backend: each `suite::*` function exercises one
//! operation and runs once on SQLite (a temp-dir file) and once on PostgreSQL (its own schema,
//! dropped afterwards) when `AUTHGATE_TEST_DATABASE_URL` is set. Without it the PostgreSQL
//! runs are ignored (`build.rs` sets the `no_pg` cfg), so `cargo test` counts them as such.

#![allow(clippy::unwrap_used)]

mod support;

use authgate::config::{StoreBackend, StoreConfig};
use authgate::store::Store;
use support::PgSchema;

const SECRET: &[u8] = b"conformance-suite key secret, 32+ bytes";

/// A store on a fresh database, and the means to poke at it with raw SQL.
pub struct Harness {
    pub store: Store,
    pub config: StoreConfig,
    backend: Backend,
}

/// What the harness holds on to until it goes (the database itself).
enum Backend {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] PgSchema),
}

impl Harness {
    pub async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("authgate.db");
        let mut config = StoreConfig::new(StoreBackend::Sqlite { path });
        config.key_secret_env = "AUTHGATE_TEST_NO_SUCH_VARIABLE".into();
        let store = Store::open(&config).await.unwrap();
        Harness {
            store,
            config,
            backend: Backend::Sqlite(dir),
        }
    }

    /// A schema of its own on `AUTHGATE_TEST_DATABASE_URL` (the tests that call this are
    /// ignored when it is unset).
    pub async fn postgres() -> Harness {
        let schema = PgSchema::create("authgate_test").await;
        let config = StoreConfig::new(StoreBackend::Postgres {
            url: schema.url.clone(),
        });
        let store = Store::open_with_secret(&config, SECRET).await.unwrap();
        Harness {
            store,
            config,
            backend: Backend::Postgres(schema),
        }
    }

    /// Opens a second store on the same database (a restart, or a second instance).
    pub async fn reopen(&self) -> Result<Store, authgate::store::StoreError> {
        match self.backend {
            Backend::Sqlite(_) => Store::open(&self.config).await,
            Backend::Postgres(_) => Store::open_with_secret(&self.config, SECRET).await,
        }
    }

    /// Runs SQL outside the store (to inspect or tamper); returns rows affected.
    pub async fn raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match (&self.config.backend, &self.backend) {
            (StoreBackend::Sqlite { path }, _) => {
                let url = format!("sqlite://{}", path.display());
                let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await?;
                Ok(sqlx::raw_sql(sql).execute(&mut conn).await?.rows_affected())
            }
            (StoreBackend::Postgres { url }, _) => {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url).await?;
                Ok(sqlx::raw_sql(sql).execute(&mut conn).await?.rows_affected())
            }
        }
    }

    /// A single text value from raw SQL.
    pub async fn raw_text(&self, sql: &'static str) -> String {
        use sqlx::Row as _;
        match &self.config.backend {
            StoreBackend::Sqlite { path } => {
                let url = format!("sqlite://{}", path.display());
                let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
                    .await
                    .unwrap();
                sqlx::query(sql).fetch_one(&mut conn).await.unwrap().get(0)
            }
            StoreBackend::Postgres { url } => {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                    .await
                    .unwrap();
                sqlx::query(sql).fetch_one(&mut conn).await.unwrap().get(0)
            }
        }
    }
}

/// Runs every named suite function once per backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! conformance {
    ($($suite:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $suite() {
                    let harness = super::Harness::sqlite().await;
                    super::suite::$suite(&harness).await;
                    harness.store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(no_pg, ignore = "needs PostgreSQL: set AUTHGATE_TEST_DATABASE_URL")]
                async fn $suite() {
                    let harness = super::Harness::postgres().await;
                    super::suite::$suite(&harness).await;
                    harness.store.close().await;
                }
            )*
        }
    };
}

#[path = "store_conformance/suite.rs"]
mod suite;

conformance!(
    migrations_are_idempotent_and_refuse_a_newer_schema,
    key_secret_must_match,
    users_are_added_and_found_by_any_login_name,
    login_names_are_unique_across_account_phone_and_email,
    assigned_ids_are_unique_and_explicit_ids_conflict,
    users_are_updated_and_renamed_transactionally,
    password_login_and_failure_modes,
    php_bcrypt_hash_logs_in_and_is_upgraded_to_argon2id,
    unknown_login_costs_like_a_wrong_password,
    disable_and_revoke_tokens_set_not_before,
    clients_register_authenticate_and_change,
    client_removal_takes_its_tokens_along,
    signing_keys_follow_the_state_machine,
    signing_keys_activate_when_due_and_decrypt,
    refresh_tokens_rotate_and_replay_revokes_the_family,
    refresh_token_failure_modes,
    concurrent_refreshes_with_one_token_succeed_once,
    refresh_token_is_looked_up_with_its_user,
    rotation_stores_the_opaque_access_token_only_if_it_rotates,
    concurrent_rotations_one_wins_the_other_revokes_the_family,
    codes_are_single_use_and_replay_revokes_what_they_issued,
    concurrent_code_redemptions_succeed_once,
    a_redeemed_code_issues_and_records_in_one_step,
    revocations_load_in_bulk_and_purge,
    group_and_role_changes_are_mirrored_with_the_revocations,
    revoking_a_family_denies_its_access_tokens,
    login_sessions_end_by_expiry_logout_and_revocation,
    opaque_tokens_resolve_until_they_expire,
    audit_log_is_searched_by_time_actor_subject_and_kind,
    login_failures_are_counted_atomically_and_forgotten,
    audit_log_is_append_only,
    codes_carry_the_openid_nonce_and_auth_time,
    refresh_auth_time_survives_rotation,
    clients_carry_openid_logout_uris_and_id_token_alg,
    codes_carry_their_resources,
    refresh_resources_survive_rotation,
    clients_carry_resources_and_a_default,
    clients_with_resources_are_counted,
    session_ids_are_unique_public_and_not_the_token,
    live_sessions_end_when_idle_or_too_old,
    touching_a_session_coalesces_writes,
    sessions_are_listed_by_user_without_secrets,
    sessions_are_revoked_by_id_and_by_user,
    user_revocation_ends_live_sessions,
    provider_links_map_one_identity_to_one_user,
    pending_provider_logins_are_taken_once,
);
