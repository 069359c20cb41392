//! The identity stage: what the upstream is told about who is asking. The client's identity
//! headers go first, in every spelling and on every route (the strip list too); then the
//! verified identity is injected: user and group (or the client id), the impersonator, the
//! scopes, and a signed identity assertion where the route asks for one. `Authorization` is
//! dropped unless it is forwarded.
//!
//! Architecture invariant: [`IdentityHeaders::strip`] runs before [`IdentityHeaders::inject`],
//! so nothing a client sends can override an injected value.

use std::sync::Arc;
use std::time::Duration;

use hyper::HeaderMap;
use hyper::header::{self, HeaderName, HeaderValue};

use super::error::ProxyError;
use super::headers::{self, IdentityNames};
use crate::authn::Authenticator;
use crate::authz::Identity;
use crate::config::{Config, RouteConfig};
use crate::keyring::Keyring;

/// Lifetime of an identity assertion: it only has to survive one hop.
const ASSERTION_TTL: Duration = Duration::from_secs(60);

/// The identity stage: the names it strips and injects, and the key it signs assertions with.
pub(crate) struct IdentityHeaders {
    /// Every route's identity header names and the strip list, compared in the loose form.
    names: Arc<IdentityNames>,
    forward_authorization: bool,
    /// Where the authenticator reads tokens besides `Authorization` (dropped with it).
    token_headers: Vec<HeaderName>,
    impersonator_header: HeaderName,
    scope_header: Option<HeaderName>,
    assertion_header: HeaderName,
    client_header: HeaderName,
    /// The active ES256 key signs identity assertions.
    keyring: Arc<Keyring>,
    /// The assertions' issuer.
    own_issuer: String,
}

impl IdentityHeaders {
    pub fn new(config: &Config, authenticator: &Authenticator, keyring: Arc<Keyring>) -> Self {
        let identity = &config.identity;
        let strip = identity.strip_headers.iter();
        IdentityHeaders {
            names: Arc::new(
                IdentityNames::new(identity.all_names(&config.routes))
                    .with(strip.map(|h| (h.name.as_str(), h.prefix))),
            ),
            forward_authorization: config.auth.forward_authorization,
            token_headers: authenticator.token_headers().to_vec(),
            impersonator_header: identity.impersonator_header.clone(),
            scope_header: identity.scope_header.clone(),
            assertion_header: identity.assertion_header.clone(),
            client_header: identity.client_header.clone(),
            keyring,
            own_issuer: config.auth.issuer.clone(),
        }
    }

    /// The names stripped from headers (and from the request body's trailers).
    pub fn names(&self) -> &Arc<IdentityNames> {
        &self.names
    }

    /// Removes the client's identity headers. A route that allows method overrides keeps
    /// them (they are on the strip list otherwise).
    pub fn strip(&self, headers: &mut HeaderMap, method_override: bool) {
        let overrides: Vec<(&'static str, HeaderValue)> = if method_override {
            crate::config::METHOD_OVERRIDE_HEADERS
                .iter()
                .filter_map(|name| headers.get(*name).map(|v| (*name, v.clone())))
                .collect()
        } else {
            Vec::new()
        };
        headers::remove_identity(headers, &self.names);
        for (name, value) in overrides {
            headers.insert(name, value);
        }
    }

    /// Injects `identity` under `route`'s names (the policy route's). Runs after
    /// [`IdentityHeaders::strip`], so nothing here can be overridden.
    pub fn inject(
        &self,
        headers: &mut HeaderMap,
        route: &RouteConfig,
        identity: &Identity,
    ) -> Result<(), ProxyError> {
        if !self.forward_authorization {
            headers.remove(header::AUTHORIZATION);
            for name in &self.token_headers {
                headers.remove(name);
            }
        }
        match identity
            .user_id
            .strip_prefix("client:")
            .filter(|_| identity.client)
        {
            // A client acting for itself: no user a legacy upstream could mistake it for.
            Some(client_id) => {
                headers.insert(&self.client_header, value(client_id)?);
            }
            None => {
                headers.insert(&route.user_header, value(&identity.user_id)?);
                if let Some(group) = &identity.group_id {
                    headers.insert(&route.group_header, value(group)?);
                }
            }
        }
        if let Some(admin) = &identity.impersonator {
            headers.insert(&self.impersonator_header, value(admin)?);
        }
        if let Some(name) = &self.scope_header {
            headers.insert(name, value(&identity.scopes.join(" "))?);
        }
        if route.identity_assertion {
            headers.insert(&self.assertion_header, self.assertion(route, identity)?);
        }
        Ok(())
    }

    /// The identity as a short-lived ES256 JWT for `route` (its audience).
    fn assertion(
        &self,
        route: &RouteConfig,
        identity: &Identity,
    ) -> Result<HeaderValue, ProxyError> {
        let key = self
            .keyring
            .signing_key(crate::store::KeyAlg::Es256)
            .map_err(|e| ProxyError::Internal(e.into()))?;
        let assertion = crate::tokens::Assertion {
            audience: &route.name,
            user_id: &identity.user_id,
            group_id: identity.group_id.as_deref(),
            actor: identity.impersonator.as_deref(),
        };
        let now = jsonwebtoken::get_current_timestamp();
        let assertion =
            crate::tokens::issue_assertion(&self.own_issuer, &key, &assertion, ASSERTION_TTL, now)
                .map_err(|e| ProxyError::Internal(e.into()))?;
        value(&assertion)
    }
}

fn value(text: &str) -> Result<HeaderValue, ProxyError> {
    HeaderValue::from_str(text).map_err(|e| ProxyError::Internal(e.into()))
}
