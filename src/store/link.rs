//! Upstream OpenID Connect providers in the store: identities linked to local users (issuer +
//! `sub` → one user) and the pending sign-ins sent to a provider (found by the digest of their
//! `state`, bound to one browser by the digest of its pending cookie, taken once: a replayed
//! callback finds nothing, and another browser can neither take nor burn it).

use std::time::Duration;

use super::db::q;
use super::secret::{digest_of, new_token};
use super::{Store, StoreError, secs};

/// A provider identity linked to a local user, as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderLink {
    /// The provider's issuer.
    pub issuer: String,
    /// Its `sub` for the person.
    pub subject: String,
    /// The local user.
    pub user_id: i64,
    /// The configured provider name it was linked through.
    pub provider: String,
    /// When it was linked (Unix seconds).
    pub created_at: i64,
    /// The last sign-in through it (Unix seconds).
    pub last_used_at: i64,
}

/// A sign-in sent to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// The configured provider name.
    pub provider: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub verifier: String,
    /// The login page (path and query) to continue with.
    pub return_to: String,
}

impl Store {
    /// Stores a pending sign-in bound to the browser's `binding` (its pending cookie), for
    /// `ttl`; returns its `state` (256 random bits). Expired ones are swept on the way.
    pub async fn begin_provider_login(
        &self,
        login: &PendingLogin,
        binding: &str,
        ttl: Duration,
        now: i64,
    ) -> Result<String, StoreError> {
        self.db
            .execute(q("DELETE FROM provider_logins WHERE expires_at <= $1").int(now))
            .await?;
        let state = new_token()?;
        self.db
            .execute(
                q("INSERT INTO provider_logins
                     (state_hash, binding_hash, provider, nonce, verifier, return_to, expires_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bytes(digest_of(&state))
                .bytes(digest_of(binding))
                .text(login.provider.clone())
                .text(login.nonce.clone())
                .text(login.verifier.clone())
                .text(login.return_to.clone())
                .int(now.saturating_add(secs(ttl))),
            )
            .await?;
        Ok(state)
    }

    /// Takes (deletes) the pending sign-in of `state` started by the browser whose pending
    /// cookie is `binding`: `NotFound` when there is none, it was taken already, it expired,
    /// or another browser asks (which then cannot burn it either).
    pub async fn take_provider_login(
        &self,
        state: &str,
        binding: &str,
        now: i64,
    ) -> Result<PendingLogin, StoreError> {
        let row = self
            .db
            .write(
                q(
                    "DELETE FROM provider_logins WHERE state_hash = $1 AND binding_hash = $2
                   RETURNING provider, nonce, verifier, return_to, expires_at",
                )
                .bytes(digest_of(state))
                .bytes(digest_of(binding)),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("pending sign-in"))?;
        if row.get::<i64>("expires_at")? <= now {
            return Err(StoreError::not_found("pending sign-in"));
        }
        Ok(PendingLogin {
            provider: row.get("provider")?,
            nonce: row.get("nonce")?,
            verifier: row.get("verifier")?,
            return_to: row.get("return_to")?,
        })
    }

    /// The user linked to `issuer` + `subject`, with the link's use recorded.
    pub async fn linked_user(
        &self,
        issuer: &str,
        subject: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let row = self
            .db
            .write(
                q(
                    "UPDATE user_links SET last_used_at = $3 WHERE issuer = $1 AND subject = $2
                   RETURNING user_id",
                )
                .text(issuer)
                .text(subject)
                .int(now),
            )
            .await?;
        row.map(|r| r.get("user_id")).transpose()
    }

    /// Links `issuer` + `subject` to `user_id`; `Conflict` when that identity is linked
    /// already.
    pub async fn link_user(
        &self,
        provider: &str,
        issuer: &str,
        subject: &str,
        user_id: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let inserted = self
            .db
            .execute(
                q("INSERT INTO user_links
                     (issuer, subject, user_id, provider, created_at, last_used_at)
                   VALUES ($1, $2, $3, $4, $5, $5)
                   ON CONFLICT (issuer, subject) DO NOTHING")
                .text(issuer)
                .text(subject)
                .int(user_id)
                .text(provider)
                .int(now),
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::conflict(format!(
                "the identity {subject} at {issuer} (linked already)"
            )));
        }
        Ok(())
    }

    /// The provider identities linked to `user_id`, oldest first.
    pub async fn user_links(&self, user_id: i64) -> Result<Vec<ProviderLink>, StoreError> {
        let rows = self
            .db
            .fetch_all(
                q(
                    "SELECT issuer, subject, user_id, provider, created_at, last_used_at
                   FROM user_links WHERE user_id = $1 ORDER BY created_at, provider, subject",
                )
                .int(user_id),
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ProviderLink {
                    issuer: row.get("issuer")?,
                    subject: row.get("subject")?,
                    user_id: row.get("user_id")?,
                    provider: row.get("provider")?,
                    created_at: row.get("created_at")?,
                    last_used_at: row.get("last_used_at")?,
                })
            })
            .collect()
    }

    /// Removes `user_id`'s links through `provider`; how many there were.
    pub async fn unlink_user(&self, user_id: i64, provider: &str) -> Result<u64, StoreError> {
        self.db
            .execute(
                q("DELETE FROM user_links WHERE user_id = $1 AND provider = $2")
                    .int(user_id)
                    .text(provider),
            )
            .await
    }
}
