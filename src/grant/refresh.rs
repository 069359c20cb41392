//! The `refresh_token` grant (RFC 6749 §6): rotating. The store rotates the token in one
//! conditional update (of two concurrent refreshes exactly one wins; a reused token revokes its
//! family). The scope may be narrowed for the new access token; the family keeps what it was
//! granted, so a later refresh can ask for the rest again, never for more.

use super::client_auth::require;
use super::{Engine, Grant, GrantError, IssueOptions, Subject, now, resource, scope};
use crate::store::{Client, GrantType, StoreError};

const BAD_REFRESH: &str = "the refresh token is invalid, expired or revoked";

impl Engine {
    pub(super) async fn refresh(
        &self,
        client: &Client,
        presented: &str,
        requested: Option<&[String]>,
        resources: &[String],
        options: &IssueOptions,
    ) -> Result<Grant, GrantError> {
        require(client, GrantType::RefreshToken)?;
        // Scope first, on a read-only look: a refused widening must not cost the client its
        // token. A family's scope never changes, so checking before rotating is sound. The
        // user comes with it (one query); the rotation below refuses a token revoked since,
        // which is what disabling a user does to their refresh tokens.
        let (current, user) = self
            .store
            .refresh_token_and_user(presented)
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
        // The family keeps the resources it was granted; this token may be for fewer. A
        // dialect whose tokens cannot carry resources may not refresh a bound family: its
        // token would be for every API.
        if !options.resource_indicators && !current.resources.is_empty() {
            return Err(GrantError::target(
                "this refresh token is addressed to resources this endpoint cannot keep",
            ));
        }
        let resources = if options.resource_indicators {
            resource::narrow(client, resources, &current.resources)?
        } else {
            Vec::new()
        };
        let user = user.ok_or_else(|| {
            GrantError::from_store(
                BAD_REFRESH,
                StoreError::not_found(format!("user {}", current.user_id)),
            )
        })?;
        if user.disabled {
            self.store
                .revoke_refresh_family(&current.family_id, now())
                .await
                .map_err(|e| GrantError::internal("revoking a disabled user's token", e))?;
            return Err(GrantError::grant("the account is disabled"));
        }
        // Sign first, then rotate, link the new access token to the family and store it if
        // it is opaque, in one transaction: a failure after the rotation would cost the client
        // its refresh token (presenting the old one again is a replay), so nothing may fail
        // after it; and an access token exists only if the rotation happened.
        let cap = self.provider_cap(&user, current.auth_time).await?;
        let mut decision = self.decision(client, Subject::User(Box::new(user)), scope, options);
        decision.resources = resources;
        decision.cap(cap)?;
        let (mut grant, opaque) = self.sign_unstored(decision).await?;
        // OpenID Connect Core §12.2: same `sub`, `aud`, `azp`, the original `auth_time`, no
        // `nonce`. Signed before the rotation, like the access token, so nothing can fail
        // after it.
        let id_token = self
            .grant_id_token(
                &grant,
                client,
                None,
                current.auth_time,
                options.id_token_ttl,
            )
            .await?;
        grant.id_token = id_token;
        let access = grant.access_link();
        let ttl = self.refresh_ttl_within(client, options, cap);
        let rotated = match self
            .store
            .rotate_refresh_storing(
                presented,
                &client.id,
                ttl,
                Some(access),
                opaque.as_ref(),
                now(),
            )
            .await
        {
            Ok(rotated) => rotated,
            Err(error) => {
                if matches!(error, StoreError::Replayed { .. }) {
                    self.reload_revocations().await;
                }
                return Err(GrantError::from_store(BAD_REFRESH, error));
            }
        };
        grant.refresh_token = Some(rotated.token);
        Ok(grant)
    }
}
