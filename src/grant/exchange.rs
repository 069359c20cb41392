//! Token exchange (RFC 8693) for admins: an admin presents their own access token as the
//! `subject_token` and obtains a short-lived token for a user, with `act` naming the admin.
//! The admin is re-checked against the store (the token's roles may be stale); an admin cannot
//! obtain a token for another admin. An admin may also obtain their own token acting as admin
//! of another group (`group_id`, seed 002). No refresh token; every exchange is audited.

use std::time::Duration;

use super::client_auth::require;
use super::issue::Decision;
use super::{Engine, Grant, GrantError, IssueOptions, Subject, now, resource, scope};
use crate::store::{AuditEvent, Client, GrantType, StoreError, User};

/// Whom the admin wants a token for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target<'a> {
    /// `None`: the admin themself (acting as admin of `group_id`).
    pub user_id: Option<i64>,
    pub group_id: Option<i64>,
    /// RFC 8707: within the subject token's resources when it has any.
    pub resources: &'a [String],
}

const BAD_SUBJECT: &str = "the subject token is not a valid access token of an admin";

impl Engine {
    pub(super) async fn exchange(
        &self,
        client: &Client,
        subject_token: &str,
        target: Target<'_>,
        requested: Option<&[String]>,
        options: &IssueOptions,
    ) -> Result<Grant, GrantError> {
        require(client, GrantType::TokenExchange)?;
        let (admin, token_expires, subject_resources) = self.acting_admin(subject_token).await?;
        // A resource-bound subject token can be exchanged for the same or fewer resources,
        // never for more (nor for an unaddressed token).
        let resources = if !options.resource_indicators {
            // This dialect's tokens cannot carry resources: exchanging a bound token here
            // would unbind it (a replay RFC 8707 exists to stop).
            if !subject_resources.is_empty() {
                return Err(GrantError::target(
                    "the subject token is addressed to resources this endpoint cannot keep",
                ));
            }
            Vec::new()
        } else if subject_resources.is_empty() {
            resource::resolve(client, target.resources)?
        } else {
            resource::narrow(client, target.resources, &subject_resources)?
        };
        let user = match target.user_id {
            Some(id) if id != admin.id => {
                if target.group_id.is_some() {
                    return Err(GrantError::request(
                        "group_id can only be combined with the admin's own user id",
                    ));
                }
                self.target_user(id).await?
            }
            _ => admin.clone(),
        };
        let scope = scope::grant(requested, &client.scopes)?;
        // Short-lived, and never outliving the admin's own token.
        let left =
            Duration::from_secs(token_expires.saturating_sub(u64::try_from(now()).unwrap_or(0)));
        let ttl = self
            .config
            .exchange_ttl
            .min(self.access_ttl(client, options))
            .min(left);
        let acting_for_other = user.id != admin.id;
        let grant = self
            .sign(Decision {
                client,
                subject: Subject::User(Box::new(user.clone())),
                scope,
                actor: acting_for_other.then(|| admin.clone()),
                group_id: target.group_id,
                ttl,
                options,
                resources,
                not_after: None,
            })
            .await?;
        self.audit_exchange(&admin, &user, &grant).await?;
        Ok(grant)
    }

    /// The admin a subject token speaks for: our own token, verified (revocation included),
    /// whose user is still an enabled admin in the store. Also the token's expiry and its
    /// RFC 8707 resources (its `aud` when that is not just its client id).
    async fn acting_admin(
        &self,
        subject_token: &str,
    ) -> Result<(User, u64, Vec<String>), GrantError> {
        // A JWT we signed or one of our opaque tokens; valid and unrevoked.
        let principal = self
            .own_token(subject_token)
            .await?
            .ok_or(GrantError::grant(BAD_SUBJECT))?;
        let id: i64 = principal
            .user_id
            .parse()
            .map_err(|_| GrantError::grant(BAD_SUBJECT))?;
        let admin = self
            .store
            .user(id)
            .await
            .map_err(|e| GrantError::from_store(BAD_SUBJECT, e))?;
        if admin.disabled || !admin.is_admin() {
            return Err(GrantError::grant(BAD_SUBJECT));
        }
        let resources = principal
            .audiences
            .iter()
            .filter(|aud| Some(*aud) != principal.client_id.as_ref())
            .cloned()
            .collect();
        Ok((admin, principal.expires_at, resources))
    }

    async fn target_user(&self, id: i64) -> Result<User, GrantError> {
        let user = match self.store.user(id).await {
            Ok(user) => user,
            Err(e @ StoreError::NotFound { .. }) => {
                return Err(GrantError::InvalidGrant {
                    reason: "the user to act as does not exist",
                    source: Some(e),
                });
            }
            Err(e) => return Err(GrantError::internal("looking up the user", e)),
        };
        if user.is_admin() {
            return Err(GrantError::grant("an admin cannot act as another admin"));
        }
        if user.disabled {
            return Err(GrantError::grant("the user to act as is disabled"));
        }
        Ok(user)
    }

    async fn audit_exchange(
        &self,
        admin: &User,
        user: &User,
        grant: &Grant,
    ) -> Result<(), GrantError> {
        let event = AuditEvent::new("token.exchange")
            .actor(format!("user:{}", admin.id))
            .subject(format!("user:{}", user.id));
        let mut event = event;
        event.client_id = Some(grant.client.id.clone());
        event.details = serde_json::json!({
            "jti": grant.jti,
            "expires_at": grant.expires_at,
            "group_id": grant.group_id,
        });
        self.store
            .audit(&event, now())
            .await
            .map(|_| ())
            .map_err(|e| GrantError::internal("writing the audit record", e))
    }
}
