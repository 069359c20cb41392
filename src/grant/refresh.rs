//! The `refresh_token` grant (RFC 6749 §6): rotating. The store rotates the token in one
//! conditional update (of two concurrent refreshes exactly one wins; a reused token revokes its
//! family). The scope may be narrowed for the new access token; the family keeps what it was
//! granted, so a later refresh can ask for the rest again, never for more.

use super::client_auth::require;
use super::issue::Decision;
use super::{Engine, Grant, GrantError, IssueOptions, Subject, now, scope};
use crate::store::{Client, GrantType, StoreError};

const BAD_REFRESH: &str = "the refresh token is invalid, expired or revoked";

impl Engine {
    pub(super) async fn refresh(
        &self,
        client: &Client,
        presented: &str,
        requested: Option<&[String]>,
        options: &IssueOptions,
    ) -> Result<Grant, GrantError> {
        require(client, GrantType::RefreshToken)?;
        // Scope first, on a read-only look: a refused widening must not cost the client its
        // token. A family's scope never changes, so checking before rotating is sound.
        let current = self
            .store
            .refresh_token(presented)
            .await
            .map_err(|e| GrantError::from_store(BAD_REFRESH, e))?;
        if current.client_id != client.id {
            return Err(GrantError::InvalidGrant {
                reason: BAD_REFRESH,
                source: Some(StoreError::WrongClient {
                    what: "refresh token",
                }),
            });
        }
        let granted = scope::parse(&current.scope);
        let scope = scope::narrow(requested, &granted, &client.scopes)?;
        let ttl = self.refresh_ttl(client, options);
        let rotated = self
            .store
            .rotate_refresh(presented, &client.id, ttl, now())
            .await
            .map_err(|e| GrantError::from_store(BAD_REFRESH, e))?;
        let user = self
            .store
            .user(rotated.record.user_id)
            .await
            .map_err(|e| GrantError::from_store(BAD_REFRESH, e))?;
        if user.disabled {
            self.store
                .revoke_refresh_family(&rotated.record.family_id, now())
                .await
                .map_err(|e| GrantError::internal("revoking a disabled user's token", e))?;
            return Err(GrantError::grant("the account is disabled"));
        }
        let decision = Decision {
            client,
            subject: Subject::User(Box::new(user)),
            scope,
            actor: None,
            group_id: None,
            ttl: self.access_ttl(client, options),
            options,
        };
        let mut grant = self.sign(decision).await?;
        grant.refresh_token = Some(rotated.token);
        Ok(grant)
    }
}
