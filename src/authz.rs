//! Authorization on proxied routes: (principal, route, requested identity) → the identity to
//! inject, or a refusal. Admin impersonation follows seed 002's header semantics: an admin token
//! plus a `user_id` header acts as that user; plus a `group_id` header, as the admin of that
//! group. Anyone else naming anyone but themselves is refused. A route's `allowed_groups`
//! applies to the group forwarded, admins included (see [`check_group`]).
//!
//! Architecture invariant: `authz` knows nothing of tokens' wire format (it sees a verified
//! [`Principal`]) and nothing of HTTP beyond reading the requested identity's headers.

use hyper::HeaderMap;
use hyper::header::HeaderName;

use crate::authn::{ADMIN_ROLE, Principal};
use crate::config::{AuthPolicy, RouteConfig};
use crate::http::names::same_identity_name;

/// The identity forwarded upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user the upstream serves: the token's subject, or the user an admin acts as
    /// (`client:<id>` for a client acting for itself).
    pub user_id: String,
    /// The group: the token's, the one the request named, or (impersonating a user we know)
    /// that user's.
    pub group_id: Option<String>,
    /// Set when an admin acts for someone else: the admin's own user id.
    pub impersonator: Option<String>,
    /// A client acting for itself (`client_credentials`): `user_id` is `client:<id>` and
    /// upstreams get the client header instead of the user and group headers.
    pub client: bool,
    /// The token's scopes (for an optional scope header).
    pub scopes: Vec<String>,
}

/// Why a verified principal may not make this request (`ProxyError` decides the answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// 403 `insufficient_scope`.
    #[error("{0}")]
    InsufficientScope(String),
    /// 400 `invalid_request`.
    #[error("{0}")]
    BadRequest(&'static str),
    /// 401 `invalid_token`.
    #[error("{0}")]
    Audience(&'static str),
    /// 404: the user to act as does not exist.
    #[error("the user to act as does not exist")]
    NoSuchUser,
    /// 403 `insufficient_scope`: acting for another user or group is not allowed here (counted
    /// apart from other refusals).
    #[error("{0}")]
    Impersonation(&'static str),
}

/// What the client asked to act as, read from its identity headers before they are removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Requested {
    /// The user to act as: a canonical decimal id, or none (absent or empty).
    pub user_id: Option<String>,
    /// The group to act in, the same way.
    pub group_id: Option<String>,
}

impl Requested {
    /// Reads the route's user and group headers in any spelling. Two spellings with different
    /// values are refused rather than guessed between.
    pub fn from_headers(
        headers: &HeaderMap,
        user: &HeaderName,
        group: &HeaderName,
    ) -> Result<Self, Denied> {
        Ok(Requested {
            user_id: single_value(headers, user)?,
            group_id: single_value(headers, group)?,
        })
    }
}

fn single_value(headers: &HeaderMap, wanted: &HeaderName) -> Result<Option<String>, Denied> {
    let mut found: Option<String> = None;
    for (name, value) in headers {
        if !same_identity_name(name, wanted) {
            continue;
        }
        let value = value
            .to_str()
            .map_err(|_| Denied::BadRequest("an identity header is not valid text"))?
            .trim();
        match &found {
            Some(existing) if existing != value => {
                return Err(Denied::BadRequest("conflicting identity headers"));
            }
            _ => found = Some(value.to_owned()),
        }
    }
    match found.filter(|v| !v.is_empty()) {
        Some(value) if !is_canonical_id(&value) => Err(Denied::BadRequest(
            "an identity header must be a canonical decimal id (no sign, leading zeros or spaces)",
        )),
        other => Ok(other),
    }
}

/// `0` or a decimal number without sign or leading zeros that fits an i64: the one spelling
/// of an id, so `01002`, `+1002` and `1002` cannot be three audit subjects or three upstream
/// users.
pub fn is_canonical_id(value: &str) -> bool {
    let digits = value.bytes().all(|b| b.is_ascii_digit());
    digits
        && !value.is_empty()
        && (value == "0" || !value.starts_with('0'))
        && value.parse::<i64>().is_ok()
}

/// The route's policy (role, scopes, audience), then impersonation, then the group the request
/// would be forwarded with ([`check_group`]; for a user acted as without a named group, the
/// caller checks it once the store has said which).
pub fn decide(
    principal: &Principal,
    route: &RouteConfig,
    requested: &Requested,
) -> Result<Identity, Denied> {
    decide_as(principal, route, requested, false)
}

/// [`decide`], for a principal that comes from a browser `session` when true: a route's
/// `scopes` and `audiences` are about tokens (what a client was granted, which API a token is
/// for) and do not apply to the person's own session; the role, impersonation and
/// `allowed_groups` rules do.
pub fn decide_as(
    principal: &Principal,
    route: &RouteConfig,
    requested: &Requested,
    session: bool,
) -> Result<Identity, Denied> {
    let admin = principal.has_role(ADMIN_ROLE);
    if session {
        if route.auth == AuthPolicy::Admin && !admin {
            return Err(Denied::InsufficientScope(
                "this route requires the admin role".into(),
            ));
        }
    } else {
        check_policy(principal, route, admin)?;
    }
    // A token an admin obtained by token exchange names them in `act`: upstreams see the same
    // impersonator header as for header-based impersonation.
    let own = Identity {
        user_id: principal.user_id.clone(),
        group_id: principal.group_id.clone(),
        impersonator: principal.actor.clone(),
        scopes: principal.scopes.clone(),
        client: principal.is_client(),
    };
    if own.client && !route.allow_clients {
        return Err(Denied::InsufficientScope(
            "this route does not accept client credentials tokens".into(),
        ));
    }
    let other_user = requested
        .user_id
        .as_ref()
        .filter(|u| **u != principal.user_id);
    let other_group = requested
        .group_id
        .as_ref()
        .filter(|g| Some(*g) != principal.group_id.as_ref());
    if other_user.is_none() && other_group.is_none() {
        check_group(route, &own)?;
        return Ok(own);
    }
    may_act_for_others(route, admin)?;
    let acting = acting_as(principal, requested, other_user, other_group);
    // Acting as a user without naming a group: the group is the store's, filled in after this
    // (`proxy/admission.rs`), which checks it then.
    if acting.group_id.is_some() {
        check_group(route, &acting)?;
    }
    Ok(acting)
}

/// The route's `allowed_groups` (when not empty) against the group the request is forwarded
/// with: the principal's current group (`Revocations::current` brought it up to date), or the
/// group an admin acts in — the named one, or the impersonated user's. Admins do not bypass it:
/// an admin outside the list passes only by acting in (or as a user of) an allowed group, where
/// impersonation is allowed. No group (a client acting for itself, an issuer without a group
/// claim) is refused. The client is not told which groups are allowed.
pub fn check_group(route: &RouteConfig, identity: &Identity) -> Result<(), Denied> {
    if route.allowed_groups.is_empty() {
        return Ok(());
    }
    let forwarded = identity.group_id.as_ref().filter(|_| !identity.client);
    match forwarded {
        Some(group) if route.allowed_groups.contains(group) => Ok(()),
        _ => Err(Denied::InsufficientScope(
            "your group may not use this route".into(),
        )),
    }
}

/// Only an admin, and only where the route allows impersonation.
fn may_act_for_others(route: &RouteConfig, admin: bool) -> Result<(), Denied> {
    if !admin {
        return Err(Denied::Impersonation(
            "only an admin may act for another user or group",
        ));
    }
    if !route.impersonation {
        return Err(Denied::Impersonation(
            "impersonation is switched off on this route",
        ));
    }
    Ok(())
}

/// The identity an admin acts as: another user, or themselves as the admin of another group.
fn acting_as(
    principal: &Principal,
    requested: &Requested,
    other_user: Option<&String>,
    other_group: Option<&String>,
) -> Identity {
    match other_user {
        // As that user; their group is filled in from the store when it knows them.
        Some(user) => Identity {
            user_id: user.clone(),
            group_id: requested.group_id.clone(),
            impersonator: Some(principal.user_id.clone()),
            scopes: principal.scopes.clone(),
            client: false,
        },
        // As the admin of that group.
        None => Identity {
            user_id: principal.user_id.clone(),
            group_id: other_group.cloned(),
            impersonator: Some(principal.user_id.clone()),
            scopes: principal.scopes.clone(),
            client: false,
        },
    }
}

/// The route's role, scopes and audiences.
fn check_policy(principal: &Principal, route: &RouteConfig, admin: bool) -> Result<(), Denied> {
    if route.auth == AuthPolicy::Admin && !admin {
        return Err(Denied::InsufficientScope(
            "this route requires the admin role".into(),
        ));
    }
    if let Some(missing) = route.scopes.iter().find(|s| !principal.scopes.contains(s)) {
        return Err(Denied::InsufficientScope(format!(
            "this route requires the scope `{missing}`"
        )));
    }
    if !route.audiences.is_empty()
        && !principal
            .audiences
            .iter()
            .any(|a| route.audiences.contains(a))
    {
        return Err(Denied::Audience(
            "the token is not meant for this route's audience",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
