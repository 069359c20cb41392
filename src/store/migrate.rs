//! Embedded schema migrations, one set per backend, applied in one transaction at start.
//!
//! The version table `authgate_schema_version` records every applied version. A database that
//! records a version this binary does not know was migrated by a newer authgate: it is refused
//! rather than used with a schema this code cannot read correctly.

use super::StoreError;
use super::db::{Pool, q};

struct Migration {
    version: i64,
    description: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// Append only: a released migration is never edited, a change is a new version.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "users, clients, signing keys, tokens, codes, revocations, audit log",
        sqlite: include_str!("migrations/sqlite/0001_init.sql"),
        postgres: include_str!("migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        description: "access tokens of each refresh-token family",
        sqlite: include_str!("migrations/sqlite/0002_family_access_tokens.sql"),
        postgres: include_str!("migrations/postgres/0002_family_access_tokens.sql"),
    },
    Migration {
        version: 3,
        description: "browser login sessions",
        sqlite: include_str!("migrations/sqlite/0003_login_sessions.sql"),
        postgres: include_str!("migrations/postgres/0003_login_sessions.sql"),
    },
    Migration {
        version: 4,
        description: "opaque reference access tokens",
        sqlite: include_str!("migrations/sqlite/0004_opaque_tokens.sql"),
        postgres: include_str!("migrations/postgres/0004_opaque_tokens.sql"),
    },
    Migration {
        version: 5,
        description: "login back-off counts shared by a cluster",
        sqlite: include_str!("migrations/sqlite/0005_login_failures.sql"),
        postgres: include_str!("migrations/postgres/0005_login_failures.sql"),
    },
    Migration {
        version: 6,
        description: "when a user's group or roles last changed",
        sqlite: include_str!("migrations/sqlite/0006_identity_changes.sql"),
        postgres: include_str!("migrations/postgres/0006_identity_changes.sql"),
    },
    Migration {
        version: 7,
        description: "OpenID Connect: code nonce, auth_time, client logout URIs, ID token alg",
        sqlite: include_str!("migrations/sqlite/0007_openid.sql"),
        postgres: include_str!("migrations/postgres/0007_openid.sql"),
    },
    Migration {
        version: 8,
        description: "RFC 8707 resources: of clients (and a default), codes, refresh tokens",
        sqlite: include_str!("migrations/sqlite/0008_resources.sql"),
        postgres: include_str!("migrations/postgres/0008_resources.sql"),
    },
    Migration {
        version: 9,
        description: "browser sessions: public id, last seen, index by user",
        sqlite: include_str!("migrations/sqlite/0009_sessions.sql"),
        postgres: include_str!("migrations/postgres/0009_sessions.sql"),
    },
    Migration {
        version: 10,
        description: "upstream OpenID Connect providers: linked identities, pending sign-ins",
        sqlite: include_str!("migrations/sqlite/0010_provider_links.sql"),
        postgres: include_str!("migrations/postgres/0010_provider_links.sql"),
    },
];

/// A no-op migration that only the `soak-noop-migration` build carries: `bench/soak.sh`
/// replaces one instance of a running cluster with that build (a rolling upgrade that
/// migrates the shared database while the other instance, one version behind, serves).
#[cfg(feature = "soak-noop-migration")]
const UPGRADE: &[Migration] = &[Migration {
    version: 11,
    description: "no-op (bench/soak.sh: a rolling upgrade)",
    sqlite: "SELECT 1;",
    postgres: "SELECT 1;",
}];
#[cfg(not(feature = "soak-noop-migration"))]
const UPGRADE: &[Migration] = &[];

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i64 = (MIGRATIONS.len() + UPGRADE.len()) as i64;

/// An arbitrary constant: instances starting at once take turns migrating.
const POSTGRES_LOCK_KEY: i64 = 0x6175_7468_6761_7465; // "authgate"

/// Brings the schema up to [`SCHEMA_VERSION`]; returns the version found before.
pub(crate) async fn run(pool: &Pool) -> Result<i64, StoreError> {
    let mut tx = pool.begin().await?;
    if tx.is_postgres() {
        tx.execute(q("SELECT pg_advisory_xact_lock($1)").int(POSTGRES_LOCK_KEY))
            .await?;
    }
    tx.execute_script(
        "CREATE TABLE IF NOT EXISTS authgate_schema_version (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )
    .await?;
    let found: i64 = match tx
        .fetch_optional(q(
            "SELECT MAX(version) AS version FROM authgate_schema_version",
        ))
        .await?
    {
        Some(row) => row.get::<Option<i64>>("version")?.unwrap_or(0),
        None => 0,
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for m in MIGRATIONS
        .iter()
        .chain(UPGRADE)
        .filter(|m| m.version > found)
    {
        let script = if tx.is_postgres() {
            m.postgres
        } else {
            m.sqlite
        };
        tx.execute_script(script).await?;
        tx.execute(
            q(
                "INSERT INTO authgate_schema_version (version, description, applied_at)
               VALUES ($1, $2, $3)",
            )
            .int(m.version)
            .text(m.description)
            .int(super::now()),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::{MIGRATIONS, SCHEMA_VERSION, UPGRADE};

    #[test]
    fn versions_are_consecutive_and_end_at_schema_version() {
        for (i, m) in MIGRATIONS.iter().chain(UPGRADE).enumerate() {
            assert_eq!(m.version, i as i64 + 1);
            assert!(!m.sqlite.trim().is_empty() && !m.postgres.trim().is_empty());
        }
        let last = MIGRATIONS.iter().chain(UPGRADE).last().map(|m| m.version);
        assert_eq!(last, Some(SCHEMA_VERSION));
    }
}
