//! Opaque reference access tokens: 256-bit random strings (43 characters, like the `mobile`
//! document's) whose claims live here, keyed by the token's SHA-256. Revocation is the same as
//! for JWTs (the `jti` denylist and the user's not-before), applied by whoever resolves them.

use super::db::{Row, q};
use super::secret::{digest_of, new_token};
use super::{Store, StoreError};

/// An opaque token's claims (what a JWT of ours would carry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpaqueToken {
    /// The token's id: what the `jti` denylist names.
    pub jti: String,
    /// The `sub`: a user id, or `client:<id>` for a client's own token.
    pub subject: String,
    /// The user's group when issued (`gid`).
    pub group_id: Option<i64>,
    /// The user's roles when issued.
    pub roles: Vec<String>,
    /// The client it was issued to.
    pub client_id: String,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// Token exchange: the admin acting for `subject` (`act`).
    pub actor: Option<String>,
    /// Issue time (Unix seconds): compared with the user's not-before.
    pub issued_at: i64,
    /// Expiry (Unix seconds): an expired token is not found.
    pub expires_at: i64,
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

fn from_row(row: &Row) -> Result<OpaqueToken, StoreError> {
    Ok(OpaqueToken {
        jti: row.get("jti")?,
        subject: row.get("subject")?,
        group_id: row.get("group_id")?,
        roles: words(&row.get::<String>("roles")?),
        client_id: row.get("client_id")?,
        scopes: words(&row.get::<String>("scope")?),
        actor: row.get("actor")?,
        issued_at: row.get("issued_at")?,
        expires_at: row.get("expires_at")?,
    })
}

impl Store {
    /// Stores `new` under a fresh random token; returns the token (once).
    pub async fn issue_opaque(&self, new: OpaqueToken) -> Result<String, StoreError> {
        let token = new_token()?;
        let mut tx = self.db.begin().await?;
        tx.execute(
            q(
                "INSERT INTO opaque_tokens (token_hash, jti, subject, group_id, roles, client_id,
                   scope, actor, issued_at, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bytes(digest_of(&token))
            .text(new.jti)
            .text(new.subject)
            .opt_int(new.group_id)
            .text(new.roles.join(" "))
            .text(new.client_id)
            .text(new.scopes.join(" "))
            .opt_text(new.actor)
            .int(new.issued_at)
            .int(new.expires_at),
        )
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The claims of `token` if it exists and has not expired at `now` (revocation is the
    /// caller's: the denylist and not-before apply as to any token).
    pub async fn opaque_token(&self, token: &str, now: i64) -> Result<OpaqueToken, StoreError> {
        let row = self
            .db
            .fetch_optional(
                q("SELECT * FROM opaque_tokens WHERE token_hash = $1 AND expires_at > $2")
                    .bytes(digest_of(token))
                    .int(now),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("opaque token"))?;
        from_row(&row)
    }
}
