//! What a client can do with a token it holds besides using it: revoke it (RFC 7009) and, as a
//! resource server, introspect one (RFC 7662). Both authenticate the client first, with the
//! same back-off as the token endpoint.
//!
//! Revocation is scoped to the client: another client's token is left alone (and the answer is
//! the same, RFC 7009 §2.2). Revoking a refresh token revokes its family and the access tokens
//! issued with it; revoking an access token denies its `jti` until it would have expired.
//! Introspection requires a confidential client and answers only "active or not" plus the
//! claims of an active token: an unknown, expired, revoked or foreign token is just inactive.

use std::net::IpAddr;
use std::sync::Arc;

use super::{ClientCredentials, Engine, GrantError, now};
use crate::authn::opaque::{is_opaque, principal};
use crate::authn::{Principal, Revocations as _};
use crate::store::{Client, StoreError};

/// RFC 7009 / RFC 7662 `token_type_hint`; unknown hints are ignored (RFC 7009 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A JWT or an opaque access token.
    AccessToken,
    /// A refresh token (revoking one revokes its family).
    RefreshToken,
}

impl TokenKind {
    /// The hint's kind; `None` for an unknown hint, which is ignored rather than refused.
    pub fn parse_hint(hint: &str) -> Option<TokenKind> {
        match hint {
            "access_token" => Some(TokenKind::AccessToken),
            "refresh_token" => Some(TokenKind::RefreshToken),
            _ => None,
        }
    }

    /// The search order: the hinted kind first, then the other (RFC 7009 §2.1).
    fn order(hint: Option<TokenKind>) -> [TokenKind; 2] {
        match hint {
            Some(TokenKind::AccessToken) => [TokenKind::AccessToken, TokenKind::RefreshToken],
            _ => [TokenKind::RefreshToken, TokenKind::AccessToken],
        }
    }
}

/// A revocation or introspection request. The token is redacted from `Debug`.
#[derive(Clone)]
pub struct TokenQuery {
    /// The asking client: it may revoke or introspect only tokens issued to it.
    pub client: ClientCredentials,
    /// The token as presented.
    pub token: String,
    /// Which kind to look for first.
    pub hint: Option<TokenKind>,
    /// The caller's address (after `trusted_proxies`), for the client-secret back-off.
    pub source: IpAddr,
}

impl std::fmt::Debug for TokenQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenQuery")
            .field("client", &self.client)
            .field("hint", &self.hint)
            .finish_non_exhaustive()
    }
}

/// The claims of an active token, as RFC 7662 §2.2 names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveToken {
    /// Access or refresh token.
    pub kind: TokenKind,
    /// `scope`.
    pub scope: Vec<String>,
    /// `client_id`: the client it was issued to.
    pub client_id: Option<String>,
    /// `sub`: a user id, or `client:<id>` for a client's own token.
    pub subject: String,
    /// `gid`: the group the token acts in.
    pub group_id: Option<String>,
    /// `aud`.
    pub audiences: Vec<String>,
    /// `iss` (access tokens only).
    pub issuer: Option<String>,
    /// `jti` (access tokens only).
    pub jti: Option<String>,
    /// `iat`, when known.
    pub issued_at: Option<u64>,
    /// `exp`, seconds since the epoch.
    pub expires_at: u64,
}

impl ActiveToken {
    fn from_access(principal: &Principal) -> Self {
        ActiveToken {
            kind: TokenKind::AccessToken,
            scope: principal.scopes.clone(),
            client_id: principal.client_id.clone(),
            subject: principal.subject.clone(),
            group_id: principal.group_id.clone(),
            audiences: principal.audiences.clone(),
            issuer: Some(principal.issuer.clone()),
            jti: principal.jti.clone(),
            issued_at: principal.issued_at,
            expires_at: principal.expires_at,
        }
    }
}

impl Engine {
    /// RFC 7009: revokes `query.token` if it is this client's; `Ok` whether or not it was.
    pub async fn revoke(&self, query: &TokenQuery) -> Result<(), GrantError> {
        let client = self.authenticate(&query.client, query.source).await?;
        for kind in TokenKind::order(query.hint) {
            let revoked = match kind {
                TokenKind::RefreshToken => self
                    .store
                    .revoke_refresh(&query.token, &client.id, now())
                    .await
                    .map_err(|e| GrantError::internal("revoking the refresh token", e))?,
                TokenKind::AccessToken => self.revoke_access(&client, &query.token).await?,
            };
            if revoked {
                self.reload_revocations().await;
                return Ok(());
            }
        }
        Ok(())
    }

    /// After this instance revoked something (or saw a replay revoke a family): refuse the
    /// tokens here at once, and tell the other instances (PostgreSQL NOTIFY; they also poll).
    pub(super) async fn reload_revocations(&self) {
        self.store.announce_change().await;
        if let Err(error) = self.keyring.refresh_revocations().await {
            tracing::warn!(%error, "reloading revocations after a revocation failed");
        }
    }

    async fn revoke_access(&self, client: &Client, token: &str) -> Result<bool, GrantError> {
        let Some(principal) = self.own_token(token).await? else {
            return Ok(false); // invalid, expired or already revoked: nothing to do
        };
        let (Some(jti), Some(owner)) = (&principal.jti, &principal.client_id) else {
            return Ok(false);
        };
        if *owner != client.id {
            return Ok(false);
        }
        let expires_at = i64::try_from(principal.expires_at).unwrap_or(i64::MAX);
        self.store
            .deny_jti(jti, expires_at)
            .await
            .map_err(|e| GrantError::internal("revoking the access token", e))?;
        Ok(true)
    }

    /// RFC 7662: `Some` with the claims of an active token, `None` for anything else.
    pub async fn introspect(&self, query: &TokenQuery) -> Result<Option<ActiveToken>, GrantError> {
        let client = self.authenticate(&query.client, query.source).await?;
        if client.public {
            // Anyone can claim a public client's id: it proves nothing about the caller.
            return Err(GrantError::InvalidClient { source: None });
        }
        for kind in TokenKind::order(query.hint) {
            let active = match kind {
                TokenKind::AccessToken => self
                    .own_token(&query.token)
                    .await?
                    .map(|p| ActiveToken::from_access(&p)),
                TokenKind::RefreshToken => self.active_refresh(&client, &query.token).await?,
            };
            if active.is_some() {
                return Ok(active);
            }
        }
        Ok(None)
    }

    /// Our own, valid, unrevoked access token: a JWT we signed, or an opaque reference.
    pub(super) async fn own_token(
        &self,
        token: &str,
    ) -> Result<Option<Arc<Principal>>, GrantError> {
        if !is_opaque(token) {
            return Ok(self
                .verifier
                .verify(token)
                .ok()
                .filter(|p| p.issuer == self.config.issuer));
        }
        let record = match self.store.opaque_token(token, now()).await {
            Ok(record) => record,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(GrantError::internal("looking up the opaque token", e)),
        };
        let principal = principal(&record, &self.config.issuer);
        if self.keyring.revocations().is_revoked(&principal) {
            return Ok(None);
        }
        Ok(Some(Arc::new(principal)))
    }

    /// A refresh token is only ever shown to the client it was issued to.
    async fn active_refresh(
        &self,
        client: &Client,
        token: &str,
    ) -> Result<Option<ActiveToken>, GrantError> {
        let record = match self.store.refresh_token(token).await {
            Ok(record) => record,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(GrantError::internal("looking up the refresh token", e)),
        };
        let live = record.used_at.is_none()
            && record.revoked_at.is_none()
            && record.expires_at > now()
            && record.client_id == client.id;
        Ok(live.then(|| ActiveToken {
            kind: TokenKind::RefreshToken,
            scope: super::scope::parse(&record.scope),
            client_id: Some(record.client_id),
            subject: record.user_id.to_string(),
            group_id: None,
            audiences: Vec::new(),
            issuer: Some(self.config.issuer.clone()),
            jti: None,
            issued_at: u64::try_from(record.issued_at).ok(),
            expires_at: u64::try_from(record.expires_at).unwrap_or(0),
        }))
    }
}
