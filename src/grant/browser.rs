//! The engine's half of the browser flows (RFC 6749 §4.1 code, §4.2 implicit): validating an
//! authorization request before anything is shown, logging a person in (with the same back-off
//! as the password grant), and the implicit grant's token. The login page (a dialect) decides
//! nothing of this itself.
//!
//! Order matters (RFC 6749 §4.1.2.1): the client and the redirect URI are checked first, and a
//! failure there is never sent to the redirect URI; only once both are good may other errors
//! (`unsupported_response_type`, `unauthorized_client`, `invalid_scope`, PKCE) go back to it.

use super::client_auth::require;
use super::{Engine, Grant, GrantError, IssueOptions, Subject, resource, scope};
use crate::store::{Client, GrantType, LoginSession, SessionLimits, StoreError, User};

/// What the browser asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    /// `code`: an authorization code (RFC 6749 §4.1).
    Code,
    /// `token`: an access token in the URL fragment (RFC 6749 §4.2).
    Token,
}

impl ResponseType {
    fn grant(self) -> GrantType {
        match self {
            ResponseType::Code => GrantType::AuthorizationCode,
            ResponseType::Token => GrantType::Implicit,
        }
    }
}

/// A client and a redirect URI that passed the first check: errors may now be redirected.
#[derive(Debug, Clone)]
pub struct RedirectTarget {
    /// The client the request named (any registered client: public or confidential).
    pub client: Client,
    /// The URI to send the browser back to (the request's, or the single registered one).
    pub redirect_uri: String,
    /// Whether the request named it (then the code is bound to it, RFC 6749 §4.1.3).
    pub named: bool,
}

impl Engine {
    /// Step one: the client exists and the redirect URI is one of its registered URIs, exactly
    /// (or absent, and the client has exactly one). `InvalidClient`/`InvalidRequest` here must
    /// be shown to the person, never redirected.
    pub async fn redirect_target(
        &self,
        client_id: &str,
        redirect_uri: Option<&str>,
    ) -> Result<RedirectTarget, GrantError> {
        let client = match self.store.client(client_id).await {
            Ok(client) => client,
            Err(e @ StoreError::NotFound { .. }) => {
                return Err(GrantError::InvalidClient { source: Some(e) });
            }
            Err(e) => return Err(GrantError::internal("looking up the client", e)),
        };
        let (redirect_uri, named) = match redirect_uri {
            Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => (uri.to_owned(), true),
            Some(_) => {
                return Err(GrantError::request(
                    "redirect_uri is not registered for this client",
                ));
            }
            None => match client.redirect_uris.as_slice() {
                [only] => (only.clone(), false),
                [] => return Err(GrantError::request("the client has no redirect URI")),
                _ => {
                    return Err(GrantError::request(
                        "redirect_uri is required: the client has several registered",
                    ));
                }
            },
        };
        Ok(RedirectTarget {
            client,
            redirect_uri,
            named,
        })
    }

    /// Step two, before the login page is shown: the client may use this flow, the scope is
    /// within its registration, and PKCE (code flow) is acceptable. Returns the scope to grant.
    pub fn check_authorization(
        &self,
        target: &RedirectTarget,
        response_type: ResponseType,
        scope: Option<&[String]>,
        code_challenge: Option<&str>,
        code_challenge_method: Option<&str>,
        resources: &[String],
    ) -> Result<Vec<String>, GrantError> {
        require(&target.client, response_type.grant())?;
        if response_type == ResponseType::Code {
            super::code::check_challenge(&target.client, code_challenge, code_challenge_method)?;
        }
        // RFC 8707 §2: `invalid_target` goes back to the redirect URI like the others.
        resource::resolve(&target.client, resources)?;
        scope::grant(scope, &target.client.scopes)
    }

    /// The implicit grant's token (RFC 6749 §4.2.2): no refresh token, ever.
    pub async fn implicit(
        &self,
        target: &RedirectTarget,
        user: &User,
        scope: Vec<String>,
        resources: &[String],
        options: &IssueOptions,
        auth_time: i64,
    ) -> Result<Grant, GrantError> {
        require(&target.client, GrantType::Implicit)?;
        let cap = self.provider_cap(user, Some(auth_time)).await?;
        // Public by nature: the token is handed to the browser.
        let client = &target.client;
        let mut decision = self.decision(
            client,
            Subject::User(Box::new(user.clone())),
            scope,
            options,
        );
        decision.resources = self.fresh_resources(client, resources, options)?;
        decision.cap(cap)?;
        self.sign(decision).await
    }
}

/// Login sessions, for the login page: the store keeps them; the engine is the dialects' only
/// door to state.
impl Engine {
    /// A new login session for `user`, valid for `ttl`; the token (the cookie's value) is
    /// returned once, the store keeps its digest.
    pub async fn start_session(
        &self,
        user: &User,
        ttl: std::time::Duration,
    ) -> Result<String, GrantError> {
        // Revocations are kept in whole seconds and end what started at or before them: a
        // sign-in in the very second of a `revoke-tokens` (or a password change) starts in
        // the next one, or it would be dead on arrival.
        let now = super::now();
        let start = user
            .not_before
            .map_or(now, |nb| now.max(nb.saturating_add(1)));
        self.store
            .create_login_session(user.id, ttl, start)
            .await
            .map_err(|e| GrantError::internal("starting the login session", e))
    }

    /// The user of a live session and when they signed in, `None` for anything else
    /// (expired, idle too long, logged out, revoked, disabled). A use renews the session's
    /// last-seen time in the store when it is older than `renewal` (server-side idle renewal,
    /// so it works where no `Set-Cookie` reaches the browser; writes are coalesced).
    pub async fn session_user(
        &self,
        token: &str,
        limits: &SessionLimits,
        renewal: std::time::Duration,
    ) -> Result<Option<LoginSession>, GrantError> {
        let now = super::now();
        let session = match self.store.live_session(token, limits, now).await {
            Ok(session) => session,
            Err(StoreError::NotFound { .. } | StoreError::UserDisabled) => return Ok(None),
            Err(e) => return Err(GrantError::internal("reading the login session", e)),
        };
        let renewal_secs = i64::try_from(renewal.as_secs()).unwrap_or(i64::MAX);
        let stale = now.saturating_sub(session.last_seen_at) >= renewal_secs;
        if limits.idle.is_some() && stale {
            self.store
                .touch_login_session(&session.id, now, renewal)
                .await
                .map_err(|e| GrantError::internal("renewing the login session", e))?;
        }
        Ok(Some(session))
    }

    /// RP-initiated logout: `uri` must be one of `client_id`'s registered post-logout redirect
    /// URIs, exactly. `InvalidClient`/`InvalidRequest` are shown, never redirected.
    pub async fn post_logout_target(&self, client_id: &str, uri: &str) -> Result<(), GrantError> {
        let client = match self.store.client(client_id).await {
            Ok(client) => client,
            Err(e @ StoreError::NotFound { .. }) => {
                return Err(GrantError::InvalidClient { source: Some(e) });
            }
            Err(e) => return Err(GrantError::internal("looking up the client", e)),
        };
        if client.post_logout_redirect_uris.iter().any(|r| r == uri) {
            Ok(())
        } else {
            Err(GrantError::request(
                "post_logout_redirect_uri is not registered for this client",
            ))
        }
    }

    /// Ends the session (logout); an unknown token is no error.
    pub async fn end_session(&self, token: &str) -> Result<(), GrantError> {
        if let Some(sessions) = &self.sessions {
            sessions.forget(token);
        }
        self.store
            .end_login_session(token)
            .await
            .map_err(|e| GrantError::internal("ending the login session", e))
    }
}
