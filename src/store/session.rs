//! Browser sessions (the login page's "already logged in" and the session routes', one kind):
//! a 256-bit random cookie value, stored as its SHA-256 digest, and a public id (128 random
//! bits, unrelated to the cookie value) by which operators list and revoke sessions.
//!
//! A session ends when it expires (`expires_at`), on logout, when it is revoked by id or with
//! all of its user's sessions, and when the user's tokens are revoked (password change,
//! `revoke-tokens`, disable): a session created at or before the user's not-before time is no
//! session. [`Store::live_session`] also applies an idle timeout (against `last_seen_at`,
//! renewed server-side by [`Store::touch_login_session`], writes coalesced) and an absolute
//! lifetime counted from `created_at`.

use std::time::Duration;

use super::db::q;
use super::secret::{digest_of, new_id, new_token};
use super::{Store, StoreError, User, secs};

/// A live login session: whose it is and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSession {
    /// The session's public id: names it in `authgate session list|revoke` and audit records;
    /// not a secret, never the cookie value.
    pub id: String,
    /// The signed-in user (not disabled, not revoked since the session started).
    pub user: User,
    /// When the user authenticated (Unix seconds): the session's start, the OpenID Connect
    /// `auth_time` of what the session authorizes.
    pub authenticated_at: i64,
    /// When the session was last seen (Unix seconds), as last written by
    /// [`Store::touch_login_session`] (or its start).
    pub last_seen_at: i64,
    /// When the session ends at the latest (Unix seconds): sign-in plus `[login]
    /// session_ttl` as it was then.
    pub expires_at: i64,
}

/// The lifetimes [`Store::live_session`] applies on top of a session's stored expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// The longest a session lives after sign-in, however active: it ends at
    /// `created_at + absolute`.
    pub absolute: Duration,
    /// The longest a session may go unseen: it ends once `now - last_seen_at > idle`. `None`:
    /// no idle timeout.
    pub idle: Option<Duration>,
}

/// One session as an operator sees it: no token, no digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The public id (`authgate session revoke ID`).
    pub id: String,
    /// Whose session it is.
    pub user_id: i64,
    /// That user's account (login name).
    pub account: String,
    /// Sign-in time (Unix seconds).
    pub created_at: i64,
    /// Last renewal (Unix seconds), see [`Store::touch_login_session`].
    pub last_seen_at: i64,
    /// When the session expires at the latest (Unix seconds).
    pub expires_at: i64,
}

impl Store {
    /// Starts a session for `user_id` with a fresh public id, last seen `now`; returns the
    /// cookie value (once).
    pub async fn create_login_session(
        &self,
        user_id: i64,
        ttl: Duration,
        now: i64,
    ) -> Result<String, StoreError> {
        let token = new_token()?;
        let mut tx = self.db.begin().await?;
        tx.execute(
            q("INSERT INTO login_sessions
                   (token_hash, id, user_id, created_at, last_seen_at, expires_at)
                 VALUES ($1, $2, $3, $4, $4, $5)")
            .bytes(digest_of(&token))
            .text(new_id()?)
            .int(user_id)
            .int(now)
            .int(now.saturating_add(secs(ttl))),
        )
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// A live session and its user: `NotFound` for an unknown, ended or expired session, or
    /// one the user's revocation ended; `UserDisabled` for a disabled user. No idle timeout or
    /// absolute lifetime beyond the stored expiry (the login page's sessions).
    pub async fn login_session(&self, token: &str, now: i64) -> Result<LoginSession, StoreError> {
        self.session(token, None, now).await
    }

    /// Like [`Store::login_session`], and also `NotFound` for a session unseen for longer than
    /// `limits.idle` (`now - last_seen_at > idle`) or older than `limits.absolute`
    /// (`now >= created_at + absolute`). Reads only: renewal is
    /// [`Store::touch_login_session`].
    pub async fn live_session(
        &self,
        token: &str,
        limits: &SessionLimits,
        now: i64,
    ) -> Result<LoginSession, StoreError> {
        self.session(token, Some(limits), now).await
    }

    async fn session(
        &self,
        token: &str,
        limits: Option<&SessionLimits>,
        now: i64,
    ) -> Result<LoginSession, StoreError> {
        let gone = || StoreError::not_found("login session");
        let row = self
            .db
            .fetch_optional(
                q(
                    "SELECT id, user_id, created_at, last_seen_at, expires_at FROM login_sessions
                   WHERE token_hash = $1 AND expires_at > $2",
                )
                .bytes(digest_of(token))
                .int(now),
            )
            .await?
            .ok_or_else(gone)?;
        let created_at: i64 = row.get("created_at")?;
        let last_seen_at: i64 = row.get("last_seen_at")?;
        if let Some(limits) = limits {
            if now >= created_at.saturating_add(secs(limits.absolute)) {
                return Err(gone());
            }
            if limits
                .idle
                .is_some_and(|idle| now.saturating_sub(last_seen_at) > secs(idle))
            {
                return Err(gone());
            }
        }
        let user = self.user(row.get("user_id")?).await?;
        if user.not_before.is_some_and(|nb| created_at <= nb) {
            return Err(gone());
        }
        if user.disabled {
            return Err(StoreError::UserDisabled);
        }
        Ok(LoginSession {
            id: row.get("id")?,
            user,
            authenticated_at: created_at,
            last_seen_at,
            expires_at: row.get("expires_at")?,
        })
    }

    /// Server-side idle renewal: the session `id` was seen `now`. Writes only when the stored
    /// `last_seen_at` is older than `now - coalesce` (one conditional `UPDATE`), so a busy
    /// session costs one write per `coalesce`, not one per request; an expired or unknown
    /// session is not written. Returns whether it wrote.
    pub async fn touch_login_session(
        &self,
        id: &str,
        now: i64,
        coalesce: Duration,
    ) -> Result<bool, StoreError> {
        let wrote = self
            .db
            .write(
                q("UPDATE login_sessions SET last_seen_at = $1
                   WHERE id = $2 AND last_seen_at < $3 AND expires_at > $1
                   RETURNING id")
                .int(now)
                .text(id)
                .int(now.saturating_sub(secs(coalesce))),
            )
            .await?;
        Ok(wrote.is_some())
    }

    /// The live sessions (not expired, not ended by the user's not-before, the user not
    /// disabled) of one user or of everybody, newest first. Idle timeouts are the caller's setting and not applied here.
    pub async fn login_sessions(
        &self,
        user_id: Option<i64>,
        now: i64,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let query = match user_id {
            Some(user_id) => q(
                "SELECT s.id, s.user_id, u.account, s.created_at, s.last_seen_at,
                       s.expires_at
                   FROM login_sessions s JOIN users u ON u.id = s.user_id
                   WHERE s.expires_at > $1 AND NOT u.disabled
                     AND (u.not_before IS NULL OR s.created_at > u.not_before)
                     AND s.user_id = $2
                   ORDER BY s.created_at DESC, s.id",
            )
            .int(now)
            .int(user_id),
            None => q(
                "SELECT s.id, s.user_id, u.account, s.created_at, s.last_seen_at,
                       s.expires_at
                   FROM login_sessions s JOIN users u ON u.id = s.user_id
                   WHERE s.expires_at > $1 AND NOT u.disabled
                     AND (u.not_before IS NULL OR s.created_at > u.not_before)
                   ORDER BY s.created_at DESC, s.id",
            )
            .int(now),
        };
        self.db
            .fetch_all(query)
            .await?
            .iter()
            .map(|row| {
                Ok(SessionInfo {
                    id: row.get("id")?,
                    user_id: row.get("user_id")?,
                    account: row.get("account")?,
                    created_at: row.get("created_at")?,
                    last_seen_at: row.get("last_seen_at")?,
                    expires_at: row.get("expires_at")?,
                })
            })
            .collect()
    }

    /// Ends the session `id` (an operator's revocation); whether there was one.
    pub async fn revoke_login_session(&self, id: &str) -> Result<bool, StoreError> {
        let gone = self
            .db
            .write(q("DELETE FROM login_sessions WHERE id = $1 RETURNING id").text(id))
            .await?;
        Ok(gone.is_some())
    }

    /// Ends every session of `user_id`; how many there were (expired ones not yet purged
    /// included).
    pub async fn revoke_user_sessions(&self, user_id: i64) -> Result<u64, StoreError> {
        let mut tx = self.db.begin().await?;
        let ended = tx
            .execute(q("DELETE FROM login_sessions WHERE user_id = $1").int(user_id))
            .await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Logout: the session is gone (unknown sessions are fine).
    pub async fn end_login_session(&self, token: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(q("DELETE FROM login_sessions WHERE token_hash = $1").bytes(digest_of(token)))
            .await?;
        tx.commit().await
    }
}
