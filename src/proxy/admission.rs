//! The admission stage: whether the request may go on, and as whom. Rate limits (by address
//! before authentication, so a flood never costs a signature check; by user after it),
//! authentication (`authn`), authorization on every selected route (`authz::decide`), and an
//! impersonation's checks against the store with its audit record. Nothing is forwarded when
//! this fails; public routes get no identity.

use std::sync::Arc;

use hyper::HeaderMap;
use hyper::http::request::Parts;

use super::error::ProxyError;
use super::intake::Origin;
use super::ratelimit::{self, RateLimits};
use super::select::{Routed, Selection};
use super::session::SessionGate;
use crate::authn::{Authenticator, AuthnError, Principal, Sessions, extract_token};
use crate::authz::{self, Denied, Identity, Requested};
use crate::config::{AuthPolicy, Config};
use crate::store::{AuditEvent, Store, StoreError};

/// Whether an impersonation is audited (serving) or only checked (`explain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audit {
    Write,
    DryRun,
}

/// The admission stage and what it consults.
pub(crate) struct Admission {
    authenticator: Arc<Authenticator>,
    /// Impersonated users are looked up here, and impersonations audited.
    store: Store,
    /// Our own tokens' issuer: their `act` was audited when they were issued, and users we
    /// do not know cannot be acted as with them.
    own_issuer: String,
    rate_limits: RateLimits,
    /// Session routes: the cookie, the same-origin rule, the way to the sign-in page.
    sessions: SessionGate,
}

/// What the request authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credential {
    Bearer,
    Session,
}

impl Admission {
    pub fn new(
        config: &Config,
        authenticator: Arc<Authenticator>,
        store: Store,
        sessions: Arc<Sessions>,
    ) -> Self {
        Admission {
            authenticator,
            store,
            own_issuer: config.auth.issuer.clone(),
            rate_limits: RateLimits::new(&config.routes),
            sessions: SessionGate::new(config, sessions),
        }
    }

    /// The rate limits, then [`Admission::authorize`]: the identity to inject, if any.
    pub async fn admit(
        &self,
        routed: &Routed,
        parts: &Parts,
        origin: &Origin<'_>,
        audit: Audit,
    ) -> Result<Option<Identity>, ProxyError> {
        let route = &*routed.selection.route;
        let by_client = self.rate_limits.keyed_by_client(route);
        if by_client {
            self.limit(route, None, origin)?;
        }
        let query_token = routed.query_token.as_deref();
        let identity = self
            .authorize(&routed.selection, parts, query_token, origin, audit)
            .await?;
        if !by_client {
            self.limit(route, identity.as_ref().map(|i| i.user_id.as_str()), origin)?;
        }
        Ok(identity)
    }

    fn limit(
        &self,
        route: &crate::config::RouteConfig,
        user: Option<&str>,
        origin: &Origin<'_>,
    ) -> Result<(), ProxyError> {
        let caller = ratelimit::Caller {
            user,
            ip: origin.client.ip,
        };
        self.rate_limits
            .check(route, &caller)
            .map_err(ProxyError::RateLimited)
    }

    /// Public routes: no identity. Others: a verified token, the policy of every selected
    /// route, and any impersonation the client asked for (decided on the strictest route).
    async fn authorize(
        &self,
        selection: &Selection,
        parts: &Parts,
        query_token: Option<&str>,
        origin: &Origin<'_>,
        audit: Audit,
    ) -> Result<Option<Identity>, ProxyError> {
        let headers = &parts.headers;
        let route = &*selection.policy;
        if route.auth == AuthPolicy::Public {
            return Ok(None);
        }
        let (principal, credential) = self
            .authenticate(selection, parts, query_token, origin)
            .await?;
        let session = credential == Credential::Session;
        let requested = Requested::from_headers(headers, &route.user_header, &route.group_header)?;
        let mut identity = authz::decide_as(&principal, route, &requested, session)?;
        for other in selection.all() {
            if !Arc::ptr_eq(other, &selection.policy) && other.auth != AuthPolicy::Public {
                let accepted = match credential {
                    Credential::Bearer => other.auth.reads_bearer(),
                    Credential::Session => other.auth.reads_session(),
                };
                if !accepted {
                    return Err(ProxyError::BadRequest(
                        "the request's path selects routes that take different credentials",
                    ));
                }
                authz::decide_as(&principal, other, &requested, session)?;
            }
        }
        // Header-based impersonation is audited per request, and so is acting by an external
        // issuer trusted for delegation (its `act`); our own token-exchange token was audited
        // when it was issued.
        let issued_by_us = |admin: &String| {
            principal.actor.as_ref() == Some(admin) && principal.issuer == self.own_issuer
        };
        let impersonation = identity.impersonator.clone().filter(|a| !issued_by_us(a));
        if impersonation.is_some() {
            // Boxed: rare, and an async fn's future is as large as its largest state.
            Box::pin(self.check_target(&principal, &requested, &mut identity)).await?;
        }
        if identity.impersonator.is_some() {
            // The group of a user acted as is known now (`decide` left it to the store).
            check_groups(selection, &identity)?;
        }
        if let (Some(admin), Audit::Write) = (impersonation, audit) {
            Box::pin(self.audit(&admin, &identity, &route.name, origin)).await?;
        }
        Ok(Some(identity))
    }

    /// The request's credential on the policy route: a bearer token when the route reads them
    /// and the request carries one (it alone decides: an invalid token is never a fallback to
    /// the cookie), else the session cookie on a session route.
    async fn authenticate(
        &self,
        selection: &Selection,
        parts: &Parts,
        query_token: Option<&str>,
        origin: &Origin<'_>,
    ) -> Result<(Arc<Principal>, Credential), ProxyError> {
        let route = &*selection.policy;
        let headers = &parts.headers;
        let bearer =
            route.auth.reads_bearer() && carries_bearer(&self.authenticator, headers, query_token);
        if route.auth.reads_session() && !bearer {
            let authority = selection.authority.as_ref();
            let principal = self.sessions.authenticate(parts, route, authority).await?;
            return Ok((principal, Credential::Session));
        }
        let principal = self
            .authenticator
            .authenticate_with(headers, query_token, origin.memo)
            .await?;
        Ok((principal, Credential::Bearer))
    }

    /// Impersonation that cannot be audited does not happen.
    async fn audit(
        &self,
        admin: &str,
        identity: &Identity,
        route: &str,
        origin: &Origin<'_>,
    ) -> Result<(), ProxyError> {
        let event = AuditEvent::new("impersonate")
            .actor(format!("user:{admin}"))
            .subject(format!("user:{}", identity.user_id))
            .source(origin.client.ip.to_string())
            .request(origin.request_id.to_str().unwrap_or_default())
            .details(serde_json::json!({"route": route, "group_id": identity.group_id}));
        self.store
            .audit(&event, crate::store::now())
            .await
            .map_err(|e| ProxyError::Internal(e.into()))?;
        Ok(())
    }

    /// An impersonated user must exist and be enabled when our store knows them, and must not
    /// be an admin; their group is the store's unless the request named one.
    async fn check_target(
        &self,
        principal: &Principal,
        requested: &Requested,
        identity: &mut Identity,
    ) -> Result<(), ProxyError> {
        if requested.user_id.is_none() || identity.user_id == principal.user_id {
            return Ok(()); // acting as admin of a group: the admin stays the user
        }
        let own = principal.issuer == self.own_issuer;
        let Ok(id) = identity.user_id.parse::<i64>() else {
            return if own {
                Err(Denied::NoSuchUser.into())
            } else {
                Ok(())
            };
        };
        match self.store.user(id).await {
            Ok(user) if user.disabled => {
                Err(Denied::Impersonation("the user to act as is disabled").into())
            }
            Ok(user) if user.is_admin() => {
                Err(Denied::Impersonation("an admin cannot act as another admin").into())
            }
            Ok(user) => {
                identity
                    .group_id
                    .get_or_insert_with(|| user.group_id.to_string());
                Ok(())
            }
            Err(StoreError::NotFound { .. }) if own => Err(Denied::NoSuchUser.into()),
            Err(StoreError::NotFound { .. }) => Ok(()),
            Err(error) => Err(ProxyError::Internal(error.into())),
        }
    }
}

/// Whether the request carries a bearer token at all (a malformed one counts: it is refused,
/// not skipped).
fn carries_bearer(authn: &Authenticator, headers: &HeaderMap, query_token: Option<&str>) -> bool {
    query_token.is_some_and(|t| !t.is_empty())
        || !matches!(
            extract_token(headers, authn.token_headers()),
            Err(AuthnError::Missing)
        )
}

/// Every selected route's `allowed_groups` on the identity as it will be forwarded, once an
/// impersonated user's group is known (so a refused impersonation is never audited).
fn check_groups(selection: &Selection, identity: &Identity) -> Result<(), ProxyError> {
    for route in selection.all().filter(|r| r.auth != AuthPolicy::Public) {
        authz::check_group(route, identity)?;
    }
    Ok(())
}
