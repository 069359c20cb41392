//! Refresh tokens and authorization codes: 256-bit random values handed out once and stored as
//! SHA-256 digests.
//!
//! Refresh tokens rotate on every use and belong to a *family* (everything rotated from one
//! grant). Presenting a token that was already rotated is a replay (RFC 9700 §4.14.2): the
//! whole family is revoked. The rotation is one conditional `UPDATE … WHERE used_at IS NULL
//! RETURNING`, so of two concurrent refreshes with one token exactly one wins; the other sees
//! a used token, which is indistinguishable from theft, and revokes the family.
//!
//! Codes are taken with the same conditional update and keep a tombstone until a day after
//! they expire, so a second use is recognised: it fails and revokes the refresh family and the
//! access token (jti) the first use recorded with [`Store::issue_for_code`].

use std::time::Duration;

use super::db::{Q, Row, Tx, q};
use super::opaque::{NewOpaque, store_opaque_in};
use super::revocation::deny_jti_in;
use super::secret::{digest_of, new_id, new_token};
use super::user::{user_columns, user_from_row};
use super::{Store, StoreError, User, secs};

/// The successful rotation on PostgreSQL, one statement: take the presented token (`$1`, at
/// `$2`, for client `$3`), insert its successor (`$4`, expiring at `$5`), link the access token
/// (`$6`, `$7`, if not NULL) and store the opaque access token (`$8`…`$18`, if not NULL). The
/// successor keeps the family's scope, authentication time and resources.
/// Data-modifying CTEs run once and to completion whether or not the final `SELECT` reads
/// them, and all or nothing with the statement. No row: nothing was taken.
const ROTATE_POSTGRES: &str = "WITH taken AS (
    UPDATE refresh_tokens SET used_at = $2
    WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL
      AND expires_at > $2 AND client_id = $3
    RETURNING family_id, user_id, client_id, scope, auth_time, resources
), fresh AS (
    INSERT INTO refresh_tokens (token_hash, family_id, user_id, client_id, scope, issued_at,
                                expires_at, auth_time, resources)
    SELECT $4, family_id, user_id, client_id, scope, $2, $5, auth_time, resources FROM taken
    RETURNING family_id, user_id, client_id, scope, auth_time, resources
), link AS (
    INSERT INTO family_access_tokens (family_id, jti, expires_at)
    SELECT family_id, $6, $7 FROM taken WHERE $6 IS NOT NULL
    ON CONFLICT (family_id, jti) DO NOTHING
), opaque AS (
    INSERT INTO opaque_tokens (token_hash, jti, subject, group_id, roles, client_id, scope,
                               actor, issued_at, expires_at, audiences)
    SELECT $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18 FROM taken WHERE $8 IS NOT NULL
)
SELECT family_id, user_id, client_id, scope, auth_time, resources FROM fresh";

/// What a redeemed code issues, recorded on it, on PostgreSQL in one statement: record the
/// family (`$2`, NULL for none) and the access token (`$3`, expiring at `$4`) on code `$1`
/// unless it was replayed; only then insert the refresh token (`$5`, for user `$6`, client
/// `$7`, scope `$8`, issued at `$9`, expiring at `$10`, authenticated at `$11`, for resources
/// `$12`; none if `$5` is NULL) and link the access token to its family. No row: the code was replayed, nothing
/// was issued.
const ISSUE_FOR_CODE_POSTGRES: &str = "WITH recorded AS (
    UPDATE auth_codes SET issued_family = $2, issued_jti = $3, issued_jti_expires = $4
    WHERE code_hash = $1 AND replayed_at IS NULL
    RETURNING code_hash
), fresh AS (
    INSERT INTO refresh_tokens (token_hash, family_id, user_id, client_id, scope, issued_at,
                                expires_at, auth_time, resources)
    SELECT $5, $2, $6, $7, $8, $9, $10, $11, $12 FROM recorded WHERE $5 IS NOT NULL
), link AS (
    INSERT INTO family_access_tokens (family_id, jti, expires_at)
    SELECT $2, $3, $4 FROM recorded WHERE $5 IS NOT NULL
    ON CONFLICT (family_id, jti) DO NOTHING
)
SELECT code_hash FROM recorded";

/// A refresh token to issue (a new family).
#[derive(Debug, Clone)]
pub struct NewRefresh {
    /// The user it acts for.
    pub user_id: i64,
    /// The client it is issued to; only that client may rotate it.
    pub client_id: String,
    /// Space-separated scope, as granted.
    pub scope: String,
    /// Lifetime of this token (each rotation starts a new one).
    pub ttl: Duration,
    /// When the person authenticated (Unix seconds), for the `auth_time` of the ID tokens
    /// refreshed with it; every rotation keeps it. `None`: not known (not an OpenID grant).
    pub auth_time: Option<i64>,
    /// The RFC 8707 resources granted to the family (absolute URIs, no whitespace); every
    /// rotation keeps them. Empty: none named.
    pub resources: Vec<String>,
}

/// What the store knows about a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// Everything rotated from one grant shares it; revocation is by family.
    pub family_id: String,
    /// The user it acts for.
    pub user_id: i64,
    /// The client it was issued to.
    pub client_id: String,
    /// Space-separated scope, as granted.
    pub scope: String,
    /// Issue time (Unix seconds).
    pub issued_at: i64,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
    /// Set once it was rotated.
    pub used_at: Option<i64>,
    /// Set when its family was revoked (reuse, revocation, code replay).
    pub revoked_at: Option<i64>,
    /// When the person authenticated (Unix seconds): the login the family was granted by,
    /// copied by every rotation. `None`: not known.
    pub auth_time: Option<i64>,
    /// The RFC 8707 resources granted to the family, copied by every rotation. Empty: none.
    pub resources: Vec<String>,
}

impl RefreshToken {
    /// The record of a token of `family_id` issued for `new` at `now`: unused, unrevoked.
    fn fresh(family_id: String, new: NewRefresh, now: i64) -> Self {
        Self {
            family_id,
            user_id: new.user_id,
            client_id: new.client_id,
            scope: new.scope,
            issued_at: now,
            expires_at: now.saturating_add(secs(new.ttl)),
            used_at: None,
            revoked_at: None,
            auth_time: new.auth_time,
            resources: new.resources,
        }
    }

    /// The record of the token a rotation of `self` issues at `now`: the same family, user,
    /// client, scope, authentication time and resources, expiring at `expires_at`.
    fn successor(self, expires_at: i64, now: i64) -> Self {
        Self {
            issued_at: now,
            expires_at,
            used_at: None,
            revoked_at: None,
            ..self
        }
    }
}

/// A freshly issued refresh token: the plaintext (give it to the client, once) and its record.
#[derive(Clone)]
pub struct IssuedRefresh {
    /// The plaintext: 43 characters, given to the client once; only its digest is stored.
    pub token: String,
    /// What was stored.
    pub record: RefreshToken,
}

impl std::fmt::Debug for IssuedRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedRefresh")
            .field("token", &"<redacted>")
            .field("record", &self.record)
            .finish()
    }
}

/// An authorization code to create.
#[derive(Debug, Clone)]
pub struct NewCode {
    /// The client the code is for; only it may redeem the code.
    pub client_id: String,
    /// The user who signed in.
    pub user_id: i64,
    /// The redirect URI of the authorization request (`None` if it named none).
    pub redirect_uri: Option<String>,
    /// Space-separated scope, as granted.
    pub scope: String,
    /// PKCE (RFC 7636) challenge and method. The store keeps what RFC 7636 defines (`S256`
    /// or `plain`); the grant engine accepts only `S256` (`grant/code.rs`), so the codes it
    /// stores carry `S256` or no challenge.
    pub pkce_challenge: Option<String>,
    /// The PKCE method the request named, with `pkce_challenge`.
    pub pkce_method: Option<String>,
    /// Default 60 s.
    pub ttl: Duration,
    /// The OpenID Connect `nonce` of the authorization request, echoed in the ID token
    /// issued for the code (`None`: the request had none).
    pub nonce: Option<String>,
    /// When the person authenticated (Unix seconds): the login form's submission or the
    /// session's start, for the ID token's `auth_time` (`None`: not known).
    pub auth_time: Option<i64>,
    /// The RFC 8707 resources the code is for (absolute URIs, no whitespace). Empty: none.
    pub resources: Vec<String>,
}

impl NewCode {
    /// `[tokens] code_ttl`'s default.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
}

/// A code that was just taken: the binding the token request must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenCode {
    /// Identifies the code for [`Store::issue_for_code`] (its digest).
    pub id: Vec<u8>,
    /// The client the code was created for.
    pub client_id: String,
    /// The user who signed in.
    pub user_id: i64,
    /// The redirect URI of the authorization request, to compare with the token request's.
    pub redirect_uri: Option<String>,
    /// Space-separated scope, as granted.
    pub scope: String,
    /// The PKCE challenge, if the request had one.
    pub pkce_challenge: Option<String>,
    /// Its method.
    pub pkce_method: Option<String>,
    /// Creation time (Unix seconds).
    pub issued_at: i64,
    /// Expiry (Unix seconds); an expired code is refused.
    pub expires_at: i64,
    /// The OpenID Connect `nonce` of the authorization request, if it had one.
    pub nonce: Option<String>,
    /// When the person authenticated (Unix seconds), if known.
    pub auth_time: Option<i64>,
    /// The RFC 8707 resources the code is for. Empty: none.
    pub resources: Vec<String>,
}

fn refresh_from_row(row: &Row) -> Result<RefreshToken, StoreError> {
    Ok(RefreshToken {
        family_id: row.get("family_id")?,
        user_id: row.get("user_id")?,
        client_id: row.get("client_id")?,
        scope: row.get("scope")?,
        issued_at: row.get("issued_at")?,
        expires_at: row.get("expires_at")?,
        used_at: row.get("used_at")?,
        revoked_at: row.get("revoked_at")?,
        auth_time: row.get("auth_time")?,
        resources: resources_from(row)?,
    })
}

/// A row's space-separated `resources` column as a list.
fn resources_from(row: &Row) -> Result<Vec<String>, StoreError> {
    let text: String = row.get("resources")?;
    Ok(text.split_whitespace().map(str::to_owned).collect())
}

/// Stores `record` under a new token; returns the token with its record.
async fn insert_refresh(tx: &mut Tx, record: RefreshToken) -> Result<IssuedRefresh, StoreError> {
    let token = new_token()?;
    insert_refresh_token(tx, &token, &record).await?;
    Ok(IssuedRefresh { token, record })
}

/// Stores `record` under `token`'s digest.
async fn insert_refresh_token(
    tx: &mut Tx,
    token: &str,
    record: &RefreshToken,
) -> Result<(), StoreError> {
    let query = q(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, client_id, scope,
         issued_at, expires_at, auth_time, resources)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bytes(digest_of(token))
    .text(record.family_id.as_str());
    tx.execute(bind_refresh(query, record)).await?;
    Ok(())
}

/// Binds what a refresh token's row holds besides its digest and family, in the column order
/// both inserts (`insert_refresh_token`, [`ISSUE_FOR_CODE_POSTGRES`]) use: user, client, scope, issue
/// time, expiry, authentication time, resources (space-separated).
fn bind_refresh(query: Q, record: &RefreshToken) -> Q {
    query
        .int(record.user_id)
        .text(record.client_id.as_str())
        .text(record.scope.as_str())
        .int(record.issued_at)
        .int(record.expires_at)
        .opt_int(record.auth_time)
        .text(record.resources.join(" "))
}

/// An access token issued together with a refresh token: revoking the family (revocation,
/// reuse, code replay) denies it until it expires.
#[derive(Debug, Clone, Copy)]
pub struct AccessLink<'a> {
    /// The access token's `jti`.
    pub jti: &'a str,
    /// Its expiry (Unix seconds): the denylist entry is kept until then.
    pub expires_at: i64,
}

async fn link_in(tx: &mut Tx, family_id: &str, access: AccessLink<'_>) -> Result<(), StoreError> {
    tx.execute(
        q(
            "INSERT INTO family_access_tokens (family_id, jti, expires_at) VALUES ($1, $2, $3)
           ON CONFLICT (family_id, jti) DO NOTHING",
        )
        .text(family_id)
        .text(access.jti)
        .int(access.expires_at),
    )
    .await?;
    Ok(())
}

/// Revokes every refresh token of the family and denies the access tokens issued with it.
async fn revoke_family(tx: &mut Tx, family_id: &str, now: i64) -> Result<u64, StoreError> {
    tx.execute(
        q("INSERT INTO denied_jtis (jti, expires_at)
           SELECT jti, expires_at FROM family_access_tokens
           WHERE family_id = $1 AND expires_at > $2
           ON CONFLICT (jti) DO NOTHING")
        .text(family_id)
        .int(now),
    )
    .await?;
    tx.execute(
        q("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
            .int(now)
            .text(family_id),
    )
    .await
}

impl Store {
    /// Issues the first refresh token of a new family.
    pub async fn issue_refresh(
        &self,
        new: NewRefresh,
        now: i64,
    ) -> Result<IssuedRefresh, StoreError> {
        self.issue_refresh_with(new, None, now).await
    }

    /// Issues the first refresh token of a new family, in the same transaction linking the
    /// access token issued with it (see [`AccessLink`]).
    pub async fn issue_refresh_with(
        &self,
        new: NewRefresh,
        access: Option<AccessLink<'_>>,
        now: i64,
    ) -> Result<IssuedRefresh, StoreError> {
        let mut tx = self.db.begin().await?;
        let issued = insert_refresh(&mut tx, RefreshToken::fresh(new_id()?, new, now)).await?;
        if let Some(access) = access {
            link_in(&mut tx, &issued.record.family_id, access).await?;
        }
        tx.commit().await?;
        Ok(issued)
    }

    /// Exchanges `presented` for a new token of the same family, scope and user, valid for
    /// `ttl`. One transaction. Fails with `NotFound` (unknown), `WrongClient` (issued to another
    /// client: the token stays valid for its owner), `Revoked`, `Expired`, or `Replayed` (it
    /// was rotated before: the whole family is now revoked).
    pub async fn rotate_refresh(
        &self,
        presented: &str,
        client_id: &str,
        ttl: Duration,
        now: i64,
    ) -> Result<IssuedRefresh, StoreError> {
        self.rotate_refresh_with(presented, client_id, ttl, None, now)
            .await
    }

    /// [`Store::rotate_refresh`], linking the access token issued with the new refresh token
    /// to the family in the same transaction: the rotation and the link land together or not
    /// at all.
    pub async fn rotate_refresh_with(
        &self,
        presented: &str,
        client_id: &str,
        ttl: Duration,
        access: Option<AccessLink<'_>>,
        now: i64,
    ) -> Result<IssuedRefresh, StoreError> {
        self.rotate_refresh_storing(presented, client_id, ttl, access, None, now)
            .await
    }

    /// [`Store::rotate_refresh_with`], also storing the opaque access token issued with the
    /// new refresh token in the same transaction: it exists only if the rotation happened.
    ///
    /// On PostgreSQL the successful rotation is one statement (the conditional `UPDATE …
    /// RETURNING` and the inserts as data-modifying CTEs, atomic as any statement): one round
    /// trip instead of `BEGIN`, three or four statements and `COMMIT`. Of two concurrent
    /// rotations the second waits for the first's row lock, re-checks `used_at IS NULL`, takes
    /// nothing and is refused as before. SQLite runs the same steps in a `BEGIN IMMEDIATE`
    /// transaction.
    pub async fn rotate_refresh_storing(
        &self,
        presented: &str,
        client_id: &str,
        ttl: Duration,
        access: Option<AccessLink<'_>>,
        opaque: Option<&NewOpaque>,
        now: i64,
    ) -> Result<IssuedRefresh, StoreError> {
        let hash = digest_of(presented);
        let expires_at = now.saturating_add(secs(ttl));
        if self.db.is_postgres() {
            let token = new_token()?;
            let query = q(ROTATE_POSTGRES)
                .bytes(hash.clone())
                .int(now)
                .text(client_id)
                .bytes(digest_of(&token))
                .int(expires_at)
                .opt_text(access.map(|a| a.jti))
                .opt_int(access.map(|a| a.expires_at));
            if let Some(row) = self.db.write(NewOpaque::bind(opaque, query)).await? {
                return Ok(IssuedRefresh {
                    token,
                    record: RefreshToken {
                        family_id: row.get("family_id")?,
                        user_id: row.get("user_id")?,
                        client_id: row.get("client_id")?,
                        scope: row.get("scope")?,
                        issued_at: now,
                        expires_at,
                        used_at: None,
                        revoked_at: None,
                        auth_time: row.get("auth_time")?,
                        resources: resources_from(&row)?,
                    },
                });
            }
            // Refused: why (and revoke the family on a replay), in a transaction of its own.
            let mut tx = self.db.begin().await?;
            let error = self.refresh_refusal(&mut tx, hash, client_id, now).await?;
            tx.commit().await?;
            return Err(error);
        }
        let mut tx = self.db.begin().await?;
        let taken = tx
            .fetch_optional(
                q("UPDATE refresh_tokens SET used_at = $2
                   WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL
                     AND expires_at > $2 AND client_id = $3
                   RETURNING family_id, user_id, client_id, scope, issued_at, expires_at,
                             used_at, revoked_at, auth_time, resources")
                .bytes(hash.clone())
                .int(now)
                .text(client_id),
            )
            .await?;
        if let Some(row) = taken {
            let old = refresh_from_row(&row)?;
            let issued = insert_refresh(&mut tx, old.successor(expires_at, now)).await?;
            if let Some(access) = access {
                link_in(&mut tx, &issued.record.family_id, access).await?;
            }
            if let Some(opaque) = opaque {
                store_opaque_in(&mut tx, opaque).await?;
            }
            tx.commit().await?;
            return Ok(issued);
        }
        let error = self.refresh_refusal(&mut tx, hash, client_id, now).await?;
        tx.commit().await?;
        Err(error)
    }

    /// Why a presented refresh token could not be rotated; revokes the family on a replay.
    async fn refresh_refusal(
        &self,
        tx: &mut Tx,
        hash: Vec<u8>,
        client_id: &str,
        now: i64,
    ) -> Result<StoreError, StoreError> {
        let row = tx
            .fetch_optional(q("SELECT * FROM refresh_tokens WHERE token_hash = $1").bytes(hash))
            .await?;
        let Some(row) = row else {
            return Ok(StoreError::not_found("refresh token"));
        };
        let token = refresh_from_row(&row)?;
        Ok(if token.client_id != client_id {
            StoreError::WrongClient {
                what: "refresh token",
            }
        } else if token.revoked_at.is_some() {
            StoreError::Revoked {
                what: "refresh token",
            }
        } else if token.used_at.is_some() {
            revoke_family(tx, &token.family_id, now).await?;
            StoreError::Replayed {
                what: "refresh token",
            }
        } else {
            StoreError::Expired {
                what: "refresh token",
            }
        })
    }

    /// Looks a refresh token up without using it, with the user it acts for (`None` if that
    /// user is gone): the refresh grant's checks before it rotates, in one query.
    pub async fn refresh_token_and_user(
        &self,
        presented: &str,
    ) -> Result<(RefreshToken, Option<User>), StoreError> {
        let row = self
            .db
            .fetch_optional(
                q(concat!(
                    "SELECT family_id, user_id, client_id, scope, issued_at, expires_at, used_at,
                            revoked_at, auth_time, resources, ",
                    user_columns!(),
                    " FROM refresh_tokens LEFT JOIN users ON users.id = refresh_tokens.user_id
                     WHERE token_hash = $1"
                ))
                .bytes(digest_of(presented)),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("refresh token"))?;
        let token = refresh_from_row(&row)?;
        let user = match row.get::<Option<i64>>("id")? {
            Some(_) => Some(user_from_row(&row)?),
            None => None,
        };
        Ok((token, user))
    }

    /// Looks a refresh token up without using it (introspection).
    pub async fn refresh_token(&self, presented: &str) -> Result<RefreshToken, StoreError> {
        let row = self
            .db
            .fetch_optional(
                q("SELECT * FROM refresh_tokens WHERE token_hash = $1").bytes(digest_of(presented)),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("refresh token"))?;
        refresh_from_row(&row)
    }

    /// RFC 7009 revocation of a refresh token: revokes its whole family. `Ok(false)` if the
    /// token is unknown or belongs to another client (RFC 7009 §2.2: answer 200 either way).
    pub async fn revoke_refresh(
        &self,
        presented: &str,
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let token = match self.refresh_token(presented).await {
            Ok(t) if t.client_id == client_id => t,
            Ok(_) | Err(StoreError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        self.revoke_refresh_family(&token.family_id, now).await?;
        Ok(true)
    }

    /// Revokes every token of the family and denies the access tokens linked to it, in one
    /// transaction. Idempotent.
    pub async fn revoke_refresh_family(&self, family_id: &str, now: i64) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        revoke_family(&mut tx, family_id, now).await?;
        tx.commit().await
    }

    /// Stores a new single-use code; returns it (43 characters), once.
    pub async fn create_code(&self, new: NewCode, now: i64) -> Result<String, StoreError> {
        if let Some(method) = &new.pkce_method
            && method != "S256"
            && method != "plain"
        {
            return Err(StoreError::invalid(
                "code_challenge_method",
                "must be S256 or plain",
            ));
        }
        let code = new_token()?;
        self.db
            .execute(
                q(
                    "INSERT INTO auth_codes (code_hash, client_id, user_id, redirect_uri, scope,
                     pkce_challenge, pkce_method, issued_at, expires_at, nonce, auth_time,
                     resources)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bytes(digest_of(&code))
                .text(new.client_id)
                .int(new.user_id)
                .opt_text(new.redirect_uri)
                .text(new.scope)
                .opt_text(new.pkce_challenge)
                .opt_text(new.pkce_method)
                .int(now)
                .int(now.saturating_add(secs(new.ttl)))
                .opt_text(new.nonce)
                .opt_int(new.auth_time)
                .text(new.resources.join(" ")),
            )
            .await?;
        Ok(code)
    }

    /// Takes a code: succeeds once. The caller then checks client, redirect URI and PKCE
    /// against the returned binding (a failed check does not give the code back). A second
    /// use is `Replayed` and revokes what [`Store::issue_for_code`] recorded.
    pub async fn take_code(&self, code: &str, now: i64) -> Result<TakenCode, StoreError> {
        let hash = digest_of(code);
        // One conditional statement in its own transaction: of two concurrent uses exactly
        // one takes the code.
        let taken = self
            .db
            .write(
                q("UPDATE auth_codes SET used_at = $2
                   WHERE code_hash = $1 AND used_at IS NULL
                   RETURNING client_id, user_id, redirect_uri, scope, pkce_challenge,
                             pkce_method, issued_at, expires_at, nonce, auth_time, resources")
                .bytes(hash.clone())
                .int(now),
            )
            .await?;
        if let Some(row) = taken {
            let code = TakenCode {
                id: hash,
                client_id: row.get("client_id")?,
                user_id: row.get("user_id")?,
                redirect_uri: row.get("redirect_uri")?,
                scope: row.get("scope")?,
                pkce_challenge: row.get("pkce_challenge")?,
                pkce_method: row.get("pkce_method")?,
                issued_at: row.get("issued_at")?,
                expires_at: row.get("expires_at")?,
                nonce: row.get("nonce")?,
                auth_time: row.get("auth_time")?,
                resources: resources_from(&row)?,
            };
            if code.expires_at <= now {
                return Err(StoreError::Expired {
                    what: "authorization code",
                });
            }
            return Ok(code);
        }
        // Not taken: unknown, or a second use, which revokes what the first one issued.
        let mut tx = self.db.begin().await?;
        let row = tx
            .fetch_optional(
                q("UPDATE auth_codes SET replayed_at = $2 WHERE code_hash = $1
                   RETURNING issued_family, issued_jti, issued_jti_expires")
                .bytes(hash)
                .int(now),
            )
            .await?;
        let Some(row) = row else {
            return Err(StoreError::not_found("authorization code"));
        };
        revoke_code_issue(
            &mut tx,
            row.get("issued_family")?,
            row.get("issued_jti")?,
            row.get("issued_jti_expires")?,
            now,
        )
        .await?;
        tx.commit().await?;
        Err(StoreError::Replayed {
            what: "authorization code",
        })
    }

    /// Issues what a taken code grants and records it on the code, in one transaction (one
    /// statement on PostgreSQL): the first refresh token of a new family, if `refresh` (with
    /// `access` linked to it), and the access token's `jti`, which a replay of the code then
    /// revokes ([`Store::take_code`]). If the code was replayed since it was taken, nothing is
    /// issued, `access` is denied at once, and the answer is `Replayed`.
    pub async fn issue_for_code(
        &self,
        code: &TakenCode,
        refresh: Option<NewRefresh>,
        access: AccessLink<'_>,
        now: i64,
    ) -> Result<Option<IssuedRefresh>, StoreError> {
        // The plaintext and the record of the refresh token to issue, if any.
        let fresh = match refresh {
            Some(new) => Some((new_token()?, RefreshToken::fresh(new_id()?, new, now))),
            None => None,
        };
        let recorded = if self.db.is_postgres() {
            let query = q(ISSUE_FOR_CODE_POSTGRES)
                .bytes(code.id.clone())
                .opt_text(fresh.as_ref().map(|(_, r)| r.family_id.clone()))
                .text(access.jti)
                .int(access.expires_at);
            let query = match &fresh {
                Some((token, record)) => bind_refresh(query.bytes(digest_of(token)), record),
                None => query
                    .opt_bytes(None)
                    .opt_int(None)
                    .opt_text(None::<String>)
                    .opt_text(None::<String>)
                    .opt_int(None)
                    .opt_int(None)
                    .opt_int(None)
                    .opt_text(None::<String>),
            };
            let recorded = self.db.write(query).await?.is_some();
            if !recorded {
                // The replay found nothing recorded to revoke: deny the access token here.
                self.deny_jti(access.jti, access.expires_at).await?;
            }
            recorded
        } else {
            let mut tx = self.db.begin().await?;
            let recorded = tx
                .execute(
                    q("UPDATE auth_codes SET issued_family = $2, issued_jti = $3,
                         issued_jti_expires = $4
                       WHERE code_hash = $1 AND replayed_at IS NULL")
                    .bytes(code.id.clone())
                    .opt_text(fresh.as_ref().map(|(_, r)| r.family_id.clone()))
                    .text(access.jti)
                    .int(access.expires_at),
                )
                .await?
                == 1;
            if !recorded {
                deny_jti_in(&mut tx, access.jti, access.expires_at).await?;
            } else if let Some((token, record)) = &fresh {
                insert_refresh_token(&mut tx, token, record).await?;
                link_in(&mut tx, &record.family_id, access).await?;
            }
            tx.commit().await?;
            recorded
        };
        if !recorded {
            // Replayed between the take and now: nothing was issued, the access token denied.
            return Err(StoreError::Replayed {
                what: "authorization code",
            });
        }
        Ok(fresh.map(|(token, record)| IssuedRefresh { token, record }))
    }
}

async fn revoke_code_issue(
    tx: &mut Tx,
    family: Option<String>,
    jti: Option<String>,
    jti_expires: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    if let Some(family) = family {
        revoke_family(tx, &family, now).await?;
    }
    if let (Some(jti), Some(expires)) = (jti, jti_expires) {
        deny_jti_in(tx, &jti, expires).await?;
    }
    Ok(())
}
