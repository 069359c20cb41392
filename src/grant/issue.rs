//! Issuance: signs the access token with the keyring's active key for the requested
//! algorithm, and (when the grant carries one) issues the first refresh token of a new family.

use std::sync::Arc;
use std::time::Duration;

use super::{Engine, Grant, GrantError, IssueOptions, Subject, TokenFormat, now};
use crate::store::{
    AccessLink, Client, GrantType, IssuedRefresh, KeyAlg, NewOpaque, NewRefresh, OpaqueToken, User,
};
use crate::tokens::{self, AccessTokenSpec, IssuedToken};

/// What a grant decided; [`Engine::sign`] turns it into a [`Grant`].
pub(super) struct Decision<'a> {
    pub client: &'a Client,
    pub subject: Subject,
    pub scope: Vec<String>,
    pub actor: Option<User>,
    pub group_id: Option<i64>,
    pub ttl: Duration,
    pub options: &'a IssueOptions,
    /// RFC 8707: the resources the token is addressed to (`aud`); empty: the client id.
    pub resources: Vec<String>,
    /// The latest time (Unix seconds) the token, and a refresh token issued with it, may
    /// live to ([`Decision::cap`]).
    pub not_after: Option<i64>,
}

impl Decision<'_> {
    /// Shortens the access token (and a refresh token issued with it) to end by `not_after`
    /// (a provider-only user's `max_session`); past it, nothing is issued.
    pub(super) fn cap(&mut self, not_after: Option<i64>) -> Result<(), GrantError> {
        let Some(not_after) = not_after else {
            return Ok(());
        };
        let left = remaining(not_after).ok_or_else(|| {
            GrantError::grant("the sign-in at the identity provider has expired: sign in again")
        })?;
        self.ttl = self.ttl.min(left);
        self.not_after = Some(not_after);
        Ok(())
    }
}

/// How long until `not_after`; `None` once it has passed.
fn remaining(not_after: i64) -> Option<Duration> {
    let left = not_after.saturating_sub(now());
    (left > 0).then(|| Duration::from_secs(left.unsigned_abs()))
}

impl Engine {
    /// What most grants decide: a token for `subject` with `scope`, acting for no one else, for
    /// the lifetime the client (else the dialect, else the engine) sets.
    pub(super) fn decision<'a>(
        &self,
        client: &'a Client,
        subject: Subject,
        scope: Vec<String>,
        options: &'a IssueOptions,
    ) -> Decision<'a> {
        Decision {
            client,
            subject,
            scope,
            actor: None,
            group_id: None,
            ttl: self.access_ttl(client, options),
            options,
            resources: Vec::new(),
            not_after: None,
        }
    }
}

/// An opaque reference token carrying `spec`'s claims (no key: `kid` is empty), minted but
/// not stored yet.
fn mint_opaque(spec: AccessTokenSpec) -> Result<(IssuedToken, NewOpaque), GrantError> {
    let issued_at = now();
    let expires_at = issued_at.saturating_add(i64::try_from(spec.ttl.as_secs()).unwrap_or(0));
    let jti = uuid::Uuid::new_v4().simple().to_string();
    let claims = OpaqueToken {
        jti: jti.clone(),
        subject: spec.user_id,
        group_id: spec.group_id,
        roles: spec.roles,
        client_id: spec.client_id.unwrap_or_default(),
        scopes: spec.scopes,
        actor: spec.actor,
        issued_at,
        expires_at,
        audiences: spec.resources,
    };
    let opaque =
        NewOpaque::mint(claims).map_err(|e| GrantError::internal("storing the opaque token", e))?;
    let issued = IssuedToken {
        token: opaque.token().to_owned(),
        jti,
        issued_at: u64::try_from(issued_at).unwrap_or(0),
        expires_at: u64::try_from(expires_at).unwrap_or(0),
    };
    Ok((issued, opaque))
}

/// The `sub` of a client's own token: never an integer, so never a user id.
pub fn client_subject(client_id: &str) -> String {
    format!("client:{client_id}")
}

impl Engine {
    /// Signs the access token of `decision` (no refresh token); an opaque one is stored.
    pub(super) async fn sign(&self, decision: Decision<'_>) -> Result<Grant, GrantError> {
        let (grant, opaque) = self.sign_unstored(decision).await?;
        if let Some(opaque) = opaque {
            self.store
                .store_opaque(&opaque)
                .await
                .map_err(|e| GrantError::internal("storing the opaque token", e))?;
        }
        Ok(grant)
    }

    /// [`Engine::sign`], except that an opaque token is only minted: the caller stores it
    /// (with the refresh rotation) before the grant is answered.
    pub(super) async fn sign_unstored(
        &self,
        decision: Decision<'_>,
    ) -> Result<(Grant, Option<NewOpaque>), GrantError> {
        let spec = match &decision.subject {
            Subject::User(user) => AccessTokenSpec {
                user_id: user.id.to_string(),
                group_id: Some(decision.group_id.unwrap_or(user.group_id)),
                roles: user.roles.clone(),
                actor: decision.actor.as_ref().map(|a| a.id.to_string()),
                ..AccessTokenSpec::default()
            },
            Subject::Client => AccessTokenSpec {
                user_id: client_subject(&decision.client.id),
                ..AccessTokenSpec::default()
            },
        };
        let spec = AccessTokenSpec {
            client_id: Some(decision.client.id.clone()),
            audiences: decision.options.audiences.clone(),
            resources: decision.resources.clone(),
            scopes: decision.scope.clone(),
            ttl: decision.ttl,
            style: decision.options.style,
            ..spec
        };
        let (issued, kid, opaque) = match decision.options.format {
            TokenFormat::Jwt => {
                let (issued, kid) = self.sign_spec(decision.options.alg, spec).await?;
                (issued, kid, None)
            }
            TokenFormat::Opaque => {
                let (issued, opaque) = mint_opaque(spec)?;
                (issued, String::new(), Some(opaque))
            }
        };
        let grant = Grant {
            access_token: issued.token,
            token_type: "Bearer",
            expires_in: decision.ttl,
            issued_at: issued.issued_at,
            expires_at: issued.expires_at,
            jti: issued.jti,
            kid,
            refresh_token: None,
            scope: decision.scope,
            group_id: match &decision.subject {
                Subject::User(user) => Some(decision.group_id.unwrap_or(user.group_id)),
                Subject::Client => None,
            },
            subject: decision.subject,
            actor: decision.actor,
            client: decision.client.clone(),
            id_token: None,
        };
        Ok((grant, opaque))
    }

    /// ES256/EdDSA sign inline (tens of microseconds); RS256 (milliseconds at 4096 bits) on
    /// the blocking pool, never on an async worker.
    async fn sign_spec(
        &self,
        alg: KeyAlg,
        spec: AccessTokenSpec,
    ) -> Result<(IssuedToken, String), GrantError> {
        let key = self
            .keyring
            .signing_key(alg)
            .map_err(|e| GrantError::internal("choosing the signing key", e))?;
        let issuer = self.config.issuer.clone();
        let at = u64::try_from(now()).unwrap_or(0);
        let kid = key.kid.clone();
        let issued = if alg == KeyAlg::Rs256 {
            let key = Arc::clone(&key);
            tokio::task::spawn_blocking(move || tokens::issue(&issuer, &key, &spec, at))
                .await
                .map_err(|e| GrantError::internal("signing the token", e))?
        } else {
            tokens::issue(&issuer, &key, &spec, at)
        };
        let issued = issued.map_err(|e| GrantError::internal("signing the token", e))?;
        Ok((issued, kid))
    }

    /// The first refresh token of a new family for `decision`'s user `user_id`, if its client
    /// may refresh.
    pub(super) fn new_refresh(&self, decision: &Decision<'_>, user_id: i64) -> Option<NewRefresh> {
        let client = decision.client;
        client.allows(GrantType::RefreshToken).then(|| NewRefresh {
            user_id,
            client_id: client.id.clone(),
            scope: decision.scope.join(" "),
            resources: decision.resources.clone(),
            ttl: self.refresh_ttl_within(client, decision.options, decision.not_after),
            auth_time: None,
        })
    }

    /// The refresh-token lifetime for `client`, ended by `not_after` when there is one (a
    /// provider-only user's cap: [`Decision::cap`]).
    pub(super) fn refresh_ttl_within(
        &self,
        client: &Client,
        options: &IssueOptions,
        not_after: Option<i64>,
    ) -> Duration {
        let ttl = self.refresh_ttl(client, options);
        not_after
            .and_then(remaining)
            .map_or(ttl, |left| left.min(ttl))
    }

    /// A user's grant: access token, plus a new refresh family if the client may refresh.
    pub(super) async fn user_grant(
        &self,
        decision: Decision<'_>,
        user: &User,
    ) -> Result<(Grant, Option<IssuedRefresh>), GrantError> {
        let Some(new) = self.new_refresh(&decision, user.id) else {
            return Ok((self.sign(decision).await?, None));
        };
        let mut grant = self.sign(decision).await?;
        let access = grant.access_link();
        let refresh = self
            .store
            .issue_refresh_with(new, Some(access), now())
            .await
            .map_err(|e| GrantError::internal("issuing the refresh token", e))?;
        grant.refresh_token = Some(refresh.token.clone());
        Ok((grant, Some(refresh)))
    }
}

impl Grant {
    /// The access token as a refresh family links it (revoking the family denies it).
    pub(super) fn access_link(&self) -> AccessLink<'_> {
        AccessLink {
            jti: &self.jti,
            expires_at: i64::try_from(self.expires_at).unwrap_or(i64::MAX),
        }
    }
}
