//! Access-token revocation: a denylist of `jti`s (kept until the token would have expired
//! anyway) and a per-user "not before" time. The hot path never reads these from the database:
//! it keeps them in memory, loaded with [`Store::revocations`] and refreshed periodically; the
//! store stays the source of truth.

use super::db::{Tx, q};
use super::{Store, StoreError};

/// Everything an in-memory revocation cache needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    /// (`jti`, expires_at) of revoked access tokens not yet expired.
    pub denied_jtis: Vec<(String, i64)>,
    /// (user id, not_before): tokens of that user issued before not_before are refused.
    pub not_before: Vec<(i64, i64)>,
    /// The current group and roles of every user whose group or roles changed since the
    /// store was created: their tokens' `gid` and `roles` may be out of date.
    pub identities: Vec<CurrentIdentity>,
}

/// A user's group and roles as they are now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentIdentity {
    /// The user.
    pub user_id: i64,
    /// Their group now (0: none).
    pub group_id: i64,
    /// Their roles now.
    pub roles: Vec<String>,
}

pub(crate) async fn deny_jti_in(tx: &mut Tx, jti: &str, expires_at: i64) -> Result<(), StoreError> {
    tx.execute(
        q("INSERT INTO denied_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .text(jti)
            .int(expires_at),
    )
    .await?;
    Ok(())
}

impl Store {
    /// Refuses the access token `jti` until `expires_at` (its own expiry).
    pub async fn deny_jti(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        deny_jti_in(&mut tx, jti, expires_at).await?;
        tx.commit().await
    }

    /// The denylist entries still in force and every user's not-before time.
    pub async fn revocations(&self, now: i64) -> Result<Revocations, StoreError> {
        let jtis = self
            .db
            .fetch_all(
                q("SELECT jti, expires_at FROM denied_jtis WHERE expires_at > $1 ORDER BY jti")
                    .int(now),
            )
            .await?;
        let users = self
            .db
            .fetch_all(q(
                "SELECT id, not_before FROM users WHERE not_before IS NOT NULL ORDER BY id",
            ))
            .await?;
        let changed = self
            .db
            .fetch_all(q(
                "SELECT id, group_id, roles FROM users WHERE identity_changed_at IS NOT NULL ORDER BY id",
            ))
            .await?;
        Ok(Revocations {
            identities: changed
                .iter()
                .map(|r| {
                    let roles: String = r.get("roles")?;
                    Ok(CurrentIdentity {
                        user_id: r.get("id")?,
                        group_id: r.get("group_id")?,
                        roles: roles.split_whitespace().map(str::to_owned).collect(),
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            denied_jtis: jtis
                .iter()
                .map(|r| Ok((r.get("jti")?, r.get("expires_at")?)))
                .collect::<Result<_, StoreError>>()?,
            not_before: users
                .iter()
                .map(|r| Ok((r.get("id")?, r.get("not_before")?)))
                .collect::<Result<_, StoreError>>()?,
        })
    }

    /// Deletes what can no longer matter: expired denylist entries and refresh tokens, and
    /// codes a day after they expired (their tombstones detect replays until then). Returns
    /// the number of rows deleted.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.db.begin().await?;
        let mut deleted = tx
            .execute(q("DELETE FROM denied_jtis WHERE expires_at <= $1").int(now))
            .await?;
        deleted += tx
            .execute(q("DELETE FROM refresh_tokens WHERE expires_at <= $1").int(now))
            .await?;
        deleted += tx
            .execute(q("DELETE FROM family_access_tokens WHERE expires_at <= $1").int(now))
            .await?;
        deleted += tx
            .execute(q("DELETE FROM login_sessions WHERE expires_at <= $1").int(now))
            .await?;
        deleted += tx
            .execute(q("DELETE FROM opaque_tokens WHERE expires_at <= $1").int(now))
            .await?;
        // Back-off counts matter for an hour by default; a day is beyond any sane policy.
        deleted += tx
            .execute(
                q("DELETE FROM login_failures WHERE last_at <= $1")
                    .int(now.saturating_sub(86_400).saturating_mul(1000)),
            )
            .await?;
        deleted += tx
            .execute(q("DELETE FROM auth_codes WHERE expires_at <= $1").int(now - 86_400))
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
