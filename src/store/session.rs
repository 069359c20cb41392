//! Browser login sessions (the authorization page's "already logged in"): a 256-bit random
//! cookie value, stored as its SHA-256 digest. A session ends when it expires, on logout, and
//! when the user's tokens are revoked (password change, `revoke-tokens`, disable): a session
//! created before the user's not-before time is no session.

use std::time::Duration;

use super::db::q;
use super::secret::{digest_of, new_token};
use super::{Store, StoreError, User, secs};

/// A live login session: whose it is and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSession {
    /// The signed-in user (not disabled, not revoked since the session started).
    pub user: User,
    /// When the user authenticated (Unix seconds): the session's start, the OpenID Connect
    /// `auth_time` of what the session authorizes.
    pub authenticated_at: i64,
}

impl Store {
    /// Starts a session for `user_id`; returns the cookie value (once).
    pub async fn create_login_session(
        &self,
        user_id: i64,
        ttl: Duration,
        now: i64,
    ) -> Result<String, StoreError> {
        let token = new_token()?;
        let mut tx = self.db.begin().await?;
        tx.execute(
            q(
                "INSERT INTO login_sessions (token_hash, user_id, created_at, expires_at)
               VALUES ($1, $2, $3, $4)",
            )
            .bytes(digest_of(&token))
            .int(user_id)
            .int(now)
            .int(now.saturating_add(secs(ttl))),
        )
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// A live session and its user: `NotFound` for an unknown, ended or expired session, or
    /// one the user's revocation ended; `UserDisabled` for a disabled user.
    pub async fn login_session(&self, token: &str, now: i64) -> Result<LoginSession, StoreError> {
        let row = self
            .db
            .fetch_optional(
                q("SELECT user_id, created_at FROM login_sessions
                   WHERE token_hash = $1 AND expires_at > $2")
                .bytes(digest_of(token))
                .int(now),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("login session"))?;
        let user = self.user(row.get("user_id")?).await?;
        let created_at: i64 = row.get("created_at")?;
        if user.not_before.is_some_and(|nb| created_at <= nb) {
            return Err(StoreError::not_found("login session"));
        }
        if user.disabled {
            return Err(StoreError::UserDisabled);
        }
        Ok(LoginSession {
            user,
            authenticated_at: created_at,
        })
    }

    /// Logout: the session is gone (unknown sessions are fine).
    pub async fn end_login_session(&self, token: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(q("DELETE FROM login_sessions WHERE token_hash = $1").bytes(digest_of(token)))
            .await?;
        tx.commit().await
    }
}
