//! Opaque reference access tokens: 256-bit random strings (43 characters, like the `mobile`
//! document's) whose claims live here, keyed by the token's SHA-256. Revocation is the same as
//! for JWTs (the `jti` denylist and the user's not-before), applied by whoever resolves them.

use super::db::{Q, Row, Tx, q};
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
    /// RFC 8707 resources it is addressed to (its `aud`); empty: the client id.
    pub audiences: Vec<String>,
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
        audiences: words(&row.get::<String>("audiences")?),
    })
}

/// An opaque token minted but not stored yet: the plaintext and the claims it will carry.
/// [`Store::store_opaque`] stores it on its own, [`Store::rotate_refresh_storing`] together
/// with a refresh-token rotation (so it exists only if the rotation happened). The token is
/// redacted from `Debug`.
#[derive(Clone)]
pub struct NewOpaque {
    token: String,
    claims: OpaqueToken,
}

impl NewOpaque {
    /// A fresh random token (256 bits, 43 characters) for `claims`; nothing is stored yet.
    pub fn mint(claims: OpaqueToken) -> Result<NewOpaque, StoreError> {
        Ok(NewOpaque {
            token: new_token()?,
            claims,
        })
    }

    /// The plaintext: give it to the client once it is stored.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The claims it carries.
    pub fn claims(&self) -> &OpaqueToken {
        &self.claims
    }

    /// Binds `token_hash, jti, subject, group_id, roles, client_id, scope, actor, issued_at,
    /// expires_at, audiences`, in that order, or as many typed NULLs (no token).
    pub(crate) fn bind(this: Option<&NewOpaque>, query: Q) -> Q {
        match this {
            Some(new) => {
                let c = &new.claims;
                query
                    .bytes(digest_of(&new.token))
                    .text(c.jti.as_str())
                    .text(c.subject.as_str())
                    .opt_int(c.group_id)
                    .text(c.roles.join(" "))
                    .text(c.client_id.as_str())
                    .text(c.scopes.join(" "))
                    .opt_text(c.actor.as_deref())
                    .int(c.issued_at)
                    .int(c.expires_at)
                    .text(c.audiences.join(" "))
            }
            None => query
                .opt_bytes(None)
                .opt_text(None::<String>)
                .opt_text(None::<String>)
                .opt_int(None)
                .opt_text(None::<String>)
                .opt_text(None::<String>)
                .opt_text(None::<String>)
                .opt_text(None::<String>)
                .opt_int(None)
                .opt_int(None)
                .opt_text(None::<String>),
        }
    }
}

impl std::fmt::Debug for NewOpaque {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewOpaque")
            .field("token", &"<redacted>")
            .field("claims", &self.claims)
            .finish()
    }
}

pub(crate) const INSERT_OPAQUE: &str =
    "INSERT INTO opaque_tokens (token_hash, jti, subject, group_id, roles, client_id,
       scope, actor, issued_at, expires_at, audiences)
   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// Stores `new` in `tx`.
pub(crate) async fn store_opaque_in(tx: &mut Tx, new: &NewOpaque) -> Result<(), StoreError> {
    tx.execute(NewOpaque::bind(Some(new), q(INSERT_OPAQUE)))
        .await?;
    Ok(())
}

impl Store {
    /// Stores `new` under a fresh random token; returns the token (once).
    pub async fn issue_opaque(&self, new: OpaqueToken) -> Result<String, StoreError> {
        let new = NewOpaque::mint(new)?;
        self.store_opaque(&new).await?;
        Ok(new.token)
    }

    /// Stores a minted token (one statement in its own transaction).
    pub async fn store_opaque(&self, new: &NewOpaque) -> Result<(), StoreError> {
        self.db
            .write(NewOpaque::bind(Some(new), q(INSERT_OPAQUE)))
            .await?;
        Ok(())
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
