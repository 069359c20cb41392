//! Who a person signed in at an upstream provider is here (issue 25): the linked local user,
//! or one linked by a verified e-mail, or one provisioned; then the group and admin role
//! re-mapped from the claims. Every link, provisioning, re-mapping and unlinking is audited.
//! And the cap on a provider-only user's tokens: they live no longer than the provider's
//! `max_session` after the sign-in they come from.

use std::net::IpAddr;

use super::{Engine, GrantError, now};
use crate::config::ProviderConfig;
use crate::providers::{Identity, claims};
use crate::store::{AuditEvent, NewUser, PendingLogin, StoreError, User, UserPatch};

/// Why a verified provider identity does not sign anybody in here.
#[derive(Debug, thiserror::Error)]
pub enum Unwelcome {
    /// `allowed_domains` / `allowed_tenants` / `required_claim` said no.
    #[error("not allowed to sign in: {0}")]
    NotAllowed(#[from] claims::NotAllowed),
    /// No link, and neither linking by e-mail nor provisioning applies.
    #[error("no local account is linked to this identity")]
    NotLinked,
    /// Provisioning wanted an account name that another user holds.
    #[error("the account name `{0}` is taken")]
    AccountTaken(String),
    /// Provisioning found no usable account name in the login claim.
    #[error("the login claim gives no usable account name")]
    NoAccountName,
    /// The local user is disabled.
    #[error("the account is disabled")]
    Disabled,
    /// Ours: the store failed.
    #[error(transparent)]
    Internal(#[from] GrantError),
}

fn store_failed(context: &'static str) -> impl FnOnce(StoreError) -> Unwelcome {
    move |error| Unwelcome::Internal(GrantError::internal(context, error))
}

impl Engine {
    /// The local user `identity` (verified by `provider`) signs in as, linking or
    /// provisioning as configured, with the group and admin role re-mapped.
    pub async fn federated_user(
        &self,
        provider: &ProviderConfig,
        identity: &Identity,
        source: IpAddr,
    ) -> Result<User, Unwelcome> {
        claims::check_allowed(&provider.allowed, &identity.claims)?;
        let at = now();
        let audit = |action: &str, user: i64| {
            AuditEvent::new(action)
                .actor(format!("provider:{}", provider.name))
                .subject(format!("user:{user}"))
                .source(source.to_string())
        };
        let linked = self
            .store
            .linked_user(&provider.issuer, &identity.subject, at)
            .await
            .map_err(store_failed("reading provider links"))?;
        let user = match linked {
            Some(id) => self
                .store
                .user(id)
                .await
                .map_err(store_failed("reading the linked user"))?,
            None => {
                let (user, method) = match self.by_email(provider, identity).await? {
                    Some(user) => (user, "link"),
                    None if provider.provision => {
                        (self.provision(provider, identity).await?, "provision")
                    }
                    None => return Err(Unwelcome::NotLinked),
                };
                // A disabled user is not linked either (nothing to audit, nothing changed).
                if user.disabled {
                    return Err(Unwelcome::Disabled);
                }
                self.store
                    .link_user(
                        &provider.name,
                        &provider.issuer,
                        &identity.subject,
                        user.id,
                        at,
                    )
                    .await
                    .map_err(store_failed("linking the identity"))?;
                let event =
                    audit(&format!("provider.{method}"), user.id).details(serde_json::json!({
                        "issuer": provider.issuer,
                        "subject": identity.subject,
                        "group_id": user.group_id,
                        "admin": user.is_admin(),
                    }));
                self.write_audit(&event).await?;
                user
            }
        };
        if user.disabled {
            return Err(Unwelcome::Disabled);
        }
        let (group, admin) = mapped(provider, &identity.claims, user.group_id, user.is_admin());
        if group == user.group_id && admin == user.is_admin() {
            return Ok(user);
        }
        let mut roles: Vec<String> = user
            .roles
            .iter()
            .filter(|r| *r != "admin")
            .cloned()
            .collect();
        if admin {
            roles.push("admin".to_owned());
        }
        let patch = UserPatch {
            group_id: Some(group),
            roles: Some(roles),
            ..UserPatch::default()
        };
        let updated = self
            .store
            .update_user(user.id, patch, at)
            .await
            .map_err(store_failed("re-mapping the user"))?;
        let event = audit("provider.remap", user.id).details(serde_json::json!({
            "group_id": [user.group_id, updated.group_id],
            "admin": [user.is_admin(), updated.is_admin()],
        }));
        self.write_audit(&event).await?;
        Ok(updated)
    }

    /// Linking by a verified e-mail: only when configured, only to a user whose e-mail login
    /// name it is, and never to an admin (an e-mail claim is a weaker proof than the admin's
    /// password: Entra ID's "nOAuth").
    async fn by_email(
        &self,
        provider: &ProviderConfig,
        identity: &Identity,
    ) -> Result<Option<User>, Unwelcome> {
        if !provider.link_by_email {
            return Ok(None);
        }
        let Some(email) = claims::verified_email(&identity.claims) else {
            return Ok(None);
        };
        match self.store.user_by_login(&email).await {
            Ok(user) if user.email.as_deref() == Some(email.as_str()) && !user.is_admin() => {
                Ok(Some(user))
            }
            Ok(user) => {
                if user.is_admin() {
                    tracing::warn!(target: "authgate::login", provider = %provider.name, user = user.id, "not linking a provider identity to an admin account by e-mail");
                }
                Ok(None)
            }
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(error) => Err(store_failed("finding the user by e-mail")(error)),
        }
    }

    /// A new local user without a password: the account from the login claim, the verified
    /// e-mail when no one holds it, the mapped group and admin role.
    async fn provision(
        &self,
        provider: &ProviderConfig,
        identity: &Identity,
    ) -> Result<User, Unwelcome> {
        let account = claims::values(&identity.claims, &provider.login_claim)
            .into_iter()
            .next()
            .filter(|a| !a.is_empty())
            .ok_or(Unwelcome::NoAccountName)?;
        match self.store.user_by_login(&account).await {
            Ok(_) => return Err(Unwelcome::AccountTaken(account)),
            Err(StoreError::NotFound { .. }) => {}
            Err(error) => return Err(store_failed("checking the account name")(error)),
        }
        let email = match claims::verified_email(&identity.claims) {
            Some(email) => match self.store.user_by_login(&email).await {
                Err(StoreError::NotFound { .. }) => Some(email),
                _ => None,
            },
            None => None,
        };
        let (group_id, admin) = mapped(provider, &identity.claims, 0, false);
        let display_name = claims::values(&identity.claims, "name").into_iter().next();
        let mut new = NewUser {
            account: account.clone(),
            email,
            group_id,
            roles: if admin {
                vec!["admin".to_owned()]
            } else {
                Vec::new()
            },
            ..NewUser::default()
        };
        new.profile.display_name = display_name;
        match self.store.add_user(new, None, now()).await {
            Ok(user) => Ok(user),
            Err(StoreError::Conflict { .. }) => Err(Unwelcome::AccountTaken(account)),
            Err(StoreError::Invalid { .. }) => Err(Unwelcome::NoAccountName),
            Err(error) => Err(store_failed("provisioning the user")(error)),
        }
    }

    /// Stores a pending provider sign-in bound to the browser's `binding`; its `state`.
    pub async fn begin_federated(
        &self,
        login: &PendingLogin,
        binding: &str,
        ttl: std::time::Duration,
    ) -> Result<String, GrantError> {
        self.store
            .begin_provider_login(login, binding, ttl, now())
            .await
            .map_err(|e| GrantError::internal("storing the pending sign-in", e))
    }

    /// Takes the pending sign-in of `state` started by the browser bound by `binding` (once);
    /// `None` when unknown, used, expired or another browser's.
    pub async fn take_federated(
        &self,
        state: &str,
        binding: &str,
    ) -> Result<Option<PendingLogin>, GrantError> {
        match self.store.take_provider_login(state, binding, now()).await {
            Ok(taken) => Ok(Some(taken)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(error) => Err(GrantError::internal("taking the pending sign-in", error)),
        }
    }

    async fn write_audit(&self, event: &AuditEvent) -> Result<(), Unwelcome> {
        self.store
            .audit(event, now())
            .await
            .map(|_| ())
            .map_err(store_failed("writing the audit record"))
    }

    /// The latest time (Unix seconds) a token of `user` may live to, when the user only signs
    /// in through providers (linked, no local password): the sign-in (`auth_time`, else now)
    /// plus the shortest `max_session` of their providers. `None`: no cap.
    pub(super) async fn provider_cap(
        &self,
        user: &User,
        auth_time: Option<i64>,
    ) -> Result<Option<i64>, GrantError> {
        if user.has_password {
            return Ok(None);
        }
        let links = self
            .store
            .user_links(user.id)
            .await
            .map_err(|e| GrantError::internal("reading provider links", e))?;
        let cap = links
            .iter()
            .map(|link| {
                self.config
                    .provider_sessions
                    .iter()
                    .find(|(name, _)| *name == link.provider)
                    .map_or(crate::config::DEFAULT_MAX_SESSION, |(_, d)| *d)
            })
            .min();
        Ok(cap.map(|cap| {
            let secs = i64::try_from(cap.as_secs()).unwrap_or(i64::MAX);
            auth_time.unwrap_or_else(now).saturating_add(secs)
        }))
    }
}

/// The group and admin flag the claims map to; `group` and `admin` where nothing is mapped.
fn mapped(
    provider: &ProviderConfig,
    claims: &claims::Claims,
    group: i64,
    admin: bool,
) -> (i64, bool) {
    let group = provider
        .group
        .as_ref()
        .map_or(group, |mapping| claims::group(mapping, claims));
    let admin = provider
        .admin
        .as_ref()
        .map_or(admin, |rule| claims::admin(rule, claims));
    (group, admin)
}
