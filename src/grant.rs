//! The grant engine: one implementation of every OAuth 2.0 grant, for every dialect.
//!
//! A dialect parses its wire format into a [`TokenRequest`] and renders the [`Grant`] or
//! [`GrantError`] that [`Engine::token`] returns in its own shape. The engine knows no HTTP and
//! no wire format (no HTTP types, no serde derives): it authenticates the client, checks that
//! the client is registered for the grant and the scopes, runs the grant against the store
//! (which owns every single-use and rotation invariant), applies the brute-force back-off, and
//! signs the access token with the keyring's active key.
//!
//! Subjects: a user's token has `sub` = the numeric user id; a `client_credentials` token has
//! `sub` = `client:<client id>` and no `gid` or roles. User ids are integers, so no client
//! subject can ever equal one, and the proxy's per-user revocation (keyed by user id) and
//! impersonation (admin role) never apply to a client token.

mod backoff;
mod browser;
mod client_auth;
mod code;
mod error;
mod exchange;
mod federated;
mod issue;
mod lifecycle;
mod openid;
mod password;
mod refresh;
pub mod resource;
pub mod scope;
mod service;
pub mod throttle;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::authn::Verifier;
pub use crate::config::TokenFormat;
use crate::keyring::Keyring;
use crate::store::{Client, KeyAlg, Store, User};
pub use crate::tokens::TokenStyle;

pub use browser::{RedirectTarget, ResponseType};
pub use client_auth::ClientCredentials;
pub use code::{AuthorizationRequest, verify_pkce};
pub use error::{Disposition, GrantError, InternalError};
pub use federated::Unwelcome;
pub use lifecycle::{ActiveToken, TokenKind, TokenQuery};
pub use openid::{IdTokenHint, UserInfo, UserInfoError};
pub use throttle::{Throttle, ThrottlePolicy};

/// Engine-wide settings (a dialect's own defaults come per call, in [`IssueOptions`]).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `iss` of every token.
    pub issuer: String,
    /// Access-token lifetime when neither the client nor the dialect sets one.
    pub access_ttl: Duration,
    /// Refresh-token lifetime when neither the client nor the dialect sets one; a rotation
    /// keeps the family's original expiry.
    pub refresh_ttl: Duration,
    /// Upper bound of a token-exchange (admin acting as a user) token's lifetime.
    pub exchange_ttl: Duration,
    /// Authorization-code lifetime (single use within it).
    pub code_ttl: Duration,
    /// Each upstream provider's `max_session` by name: the cap on a provider-only user's
    /// tokens (`grant/federated.rs`).
    pub provider_sessions: Vec<(String, Duration)>,
}

impl EngineConfig {
    /// The default lifetimes (1 h access, 30 d refresh, 5 min exchange, 60 s code).
    pub fn new(issuer: impl Into<String>) -> Self {
        EngineConfig {
            issuer: issuer.into(),
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(30 * 86_400),
            exchange_ttl: Duration::from_secs(300),
            code_ttl: crate::store::NewCode::DEFAULT_TTL,
            provider_sessions: Vec::new(),
        }
    }
}

/// What the dialect asks of issuance, besides the grant.
#[derive(Debug, Clone)]
pub struct IssueOptions {
    /// Signing algorithm (the `passport` dialect asks RS256).
    pub alg: KeyAlg,
    /// The dialect's default lifetimes; a client's own TTLs take precedence.
    pub access_ttl: Option<Duration>,
    /// The dialect's refresh-token lifetime (same precedence).
    pub refresh_ttl: Option<Duration>,
    /// Extra `aud` values besides the client id.
    pub audiences: Vec<String>,
    /// The access token's shape (the `passport` dialect's is Laravel Passport's).
    pub style: TokenStyle,
    /// JWT, or an opaque reference kept in the store.
    pub format: TokenFormat,
    /// The dialect asking (the `dialect` label of the tokens-issued metric).
    pub dialect: &'static str,
    /// OpenID Connect: the lifetime of the ID tokens a code or refresh grant with scope
    /// `openid` returns; `None`: no ID tokens (the dialect does not speak OpenID Connect).
    pub id_token_ttl: Option<Duration>,
    /// The dialect speaks RFC 8707: requested and default resources become the token's
    /// `aud`. Off for the legacy dialects, whose `aud` is documented as the client id.
    pub resource_indicators: bool,
}

impl Default for IssueOptions {
    fn default() -> Self {
        IssueOptions {
            alg: KeyAlg::Es256,
            access_ttl: None,
            refresh_ttl: None,
            audiences: Vec::new(),
            style: TokenStyle::Standard,
            format: TokenFormat::Jwt,
            dialect: "oauth2",
            id_token_ttl: None,
            resource_indicators: false,
        }
    }
}

/// How a password login names the user.
#[derive(Clone, PartialEq, Eq)]
pub enum Login {
    /// The numeric user id (`app` dialect, `/token/id`).
    UserId(i64),
    /// The account (user name) only (`/token/user`).
    Account(String),
    /// Any login name: account, phone or e-mail.
    AnyName(String),
    /// A phone number only (the `passport` dialect's `username`).
    Phone(String),
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Login::UserId(id) => write!(f, "UserId({id})"),
            Login::Account(name) => write!(f, "Account({name:?})"),
            Login::AnyName(name) => write!(f, "AnyName({name:?})"),
            Login::Phone(phone) => write!(f, "Phone({phone:?})"),
        }
    }
}

/// The grant and its parameters. Secrets are redacted from `Debug`.
#[derive(Clone)]
pub enum GrantRequest {
    /// RFC 6749 §4.3 (and the legacy dialects' logins).
    Password {
        /// How the user is named.
        login: Login,
        /// Checked by the store (Argon2id), never kept.
        password: String,
    },
    /// RFC 6749 §6: the presented token is rotated (single use; a replay revokes its family).
    RefreshToken {
        /// As presented.
        refresh_token: String,
    },
    /// RFC 6749 §4.1.3 with PKCE.
    AuthorizationCode {
        /// The single-use code.
        code: String,
        /// Must equal the authorization request's when that named one.
        redirect_uri: Option<String>,
        /// PKCE (RFC 7636 §4.5), required when the code has a challenge.
        code_verifier: Option<String>,
    },
    /// RFC 6749 §4.4: a confidential client's own token.
    ClientCredentials,
    /// RFC 8693: `subject_token` is the admin's own access token; `user_id` the user to act
    /// as (`None`: the admin themself); `group_id` (only for the admin themself) the group to
    /// act as admin of.
    TokenExchange {
        /// The admin's own access token.
        subject_token: String,
        /// The user to act as.
        user_id: Option<i64>,
        /// The group to act as admin of.
        group_id: Option<i64>,
    },
}

impl GrantRequest {
    /// The RFC 6749 / RFC 8693 grant type name.
    pub fn name(&self) -> &'static str {
        match self {
            GrantRequest::Password { .. } => "password",
            GrantRequest::RefreshToken { .. } => "refresh_token",
            GrantRequest::AuthorizationCode { .. } => "authorization_code",
            GrantRequest::ClientCredentials => "client_credentials",
            GrantRequest::TokenExchange { .. } => "urn:ietf:params:oauth:grant-type:token-exchange",
        }
    }
}

impl std::fmt::Debug for GrantRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GrantRequest::Password { login, .. } => f
                .debug_struct("Password")
                .field("login", login)
                .finish_non_exhaustive(),
            GrantRequest::TokenExchange {
                user_id, group_id, ..
            } => f
                .debug_struct("TokenExchange")
                .field("user_id", user_id)
                .field("group_id", group_id)
                .finish_non_exhaustive(),
            other => f.write_str(other.name()),
        }
    }
}

/// One token request, as every dialect hands it to the engine.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// Where the client's credentials came from.
    pub client: ClientCredentials,
    /// The grant and its parameters.
    pub grant: GrantRequest,
    /// The `scope` parameter, parsed ([`scope::parse`]); `None` when absent.
    pub scope: Option<Vec<String>>,
    /// RFC 8707 `resource` parameters, in order (empty: none).
    pub resources: Vec<String>,
    /// The caller's address (after `trusted_proxies`), for the back-off.
    pub source: IpAddr,
    /// The dialect's wishes for the token.
    pub options: IssueOptions,
}

/// Whom a token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A person (`sub` = the user id).
    User(Box<User>),
    /// `client_credentials`: the client itself (`sub` = `client:<id>`).
    Client,
}

/// A granted token and everything a dialect renders from it. Tokens are redacted from `Debug`.
#[derive(Clone)]
pub struct Grant {
    /// The signed JWT, or the opaque reference.
    pub access_token: String,
    /// Always `Bearer`; dialects spell it as their document does.
    pub token_type: &'static str,
    /// The access token's lifetime.
    pub expires_in: Duration,
    /// `iat`, seconds since the epoch.
    pub issued_at: u64,
    /// `exp`, seconds since the epoch.
    pub expires_at: u64,
    /// The access token's id (what revocation and the denylist name).
    pub jti: String,
    /// The signing key's id.
    pub kid: String,
    /// `None` for `client_credentials`, token exchange, and clients not registered for
    /// `refresh_token`.
    pub refresh_token: Option<String>,
    /// The scopes granted (within the client's registration).
    pub scope: Vec<String>,
    /// Whom the token speaks for.
    pub subject: Subject,
    /// The admin acting as the subject (token exchange).
    pub actor: Option<User>,
    /// `gid`: the group the token acts in.
    pub group_id: Option<i64>,
    /// The authenticated client the token was issued to.
    pub client: Client,
    /// OpenID Connect's ID token (code flow and refresh with scope `openid`).
    pub id_token: Option<String>,
}

impl Grant {
    /// The user record, for dialects that render a profile.
    pub fn user(&self) -> Option<&User> {
        match &self.subject {
            Subject::User(user) => Some(user),
            Subject::Client => None,
        }
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("jti", &self.jti)
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("scope", &self.scope)
            .field("subject", &self.subject)
            .field("client", &self.client.id)
            .finish_non_exhaustive()
    }
}

/// The engine; cheap to share behind an `Arc`.
pub struct Engine {
    store: Store,
    keyring: Arc<Keyring>,
    verifier: Arc<Verifier>,
    throttle: Arc<Throttle>,
    config: EngineConfig,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The proxy's memory of sessions, told when one ends here (logout).
    sessions: Option<Arc<crate::authn::Sessions>>,
}

impl Engine {
    /// `verifier` checks token-exchange subject tokens (it must trust `config.issuer` with
    /// the keyring's key set).
    pub fn new(
        store: Store,
        keyring: Arc<Keyring>,
        verifier: Arc<Verifier>,
        throttle: Arc<Throttle>,
        config: EngineConfig,
    ) -> Self {
        Engine {
            store,
            keyring,
            verifier,
            throttle,
            config,
            metrics: None,
            sessions: None,
        }
    }

    /// Counts issued tokens and failed logins in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Tells `sessions` (the proxy's) when a session ends at the login pages.
    pub fn with_sessions(mut self, sessions: Arc<crate::authn::Sessions>) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// The engine-wide settings (the dialects read the issuer from it).
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Runs one token request.
    pub async fn token(&self, request: TokenRequest) -> Result<Grant, GrantError> {
        let (dialect, grant) = (request.options.dialect, request.grant.name());
        let result = self.run(request).await;
        if let (Ok(_), Some(metrics)) = (&result, &self.metrics) {
            metrics.token_issued(dialect, grant);
        }
        result
    }

    async fn run(&self, request: TokenRequest) -> Result<Grant, GrantError> {
        let client = self.authenticate(&request.client, request.source).await?;
        let scope = request.scope.as_deref();
        let options = &request.options;
        // RFC 8707, for the dialects that speak it: what was asked for, checked per grant.
        let requested: &[String] = if options.resource_indicators {
            &request.resources
        } else {
            &[]
        };
        match request.grant {
            GrantRequest::Password { login, password } => {
                let resources = self.fresh_resources(&client, requested, options)?;
                let attempt = password::Attempt {
                    login: &login,
                    password: &password,
                    source: request.source,
                };
                self.password(&client, attempt, scope, resources, options)
                    .await
            }
            GrantRequest::RefreshToken { refresh_token } => {
                self.refresh(&client, &refresh_token, scope, requested, options)
                    .await
            }
            GrantRequest::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                let exchange = code::Exchange {
                    code: &code,
                    redirect_uri: redirect_uri.as_deref(),
                    verifier: code_verifier.as_deref(),
                    resources: requested,
                };
                self.authorization_code(&client, exchange, options).await
            }
            GrantRequest::ClientCredentials => {
                let resources = self.fresh_resources(&client, requested, options)?;
                self.client_credentials(&client, scope, resources, options)
                    .await
            }
            GrantRequest::TokenExchange {
                subject_token,
                user_id,
                group_id,
            } => {
                let target = exchange::Target {
                    user_id,
                    group_id,
                    resources: requested,
                };
                self.exchange(&client, &subject_token, target, scope, options)
                    .await
            }
        }
    }

    /// A fresh grant's resources (RFC 8707), for the dialects that speak it.
    fn fresh_resources(
        &self,
        client: &Client,
        requested: &[String],
        options: &IssueOptions,
    ) -> Result<Vec<String>, GrantError> {
        if options.resource_indicators {
            resource::resolve(client, requested)
        } else {
            Ok(Vec::new())
        }
    }

    /// Lifetimes: the client's own, else the dialect's, else the engine's.
    fn access_ttl(&self, client: &Client, options: &IssueOptions) -> Duration {
        client
            .access_ttl
            .or(options.access_ttl)
            .unwrap_or(self.config.access_ttl)
    }

    fn refresh_ttl(&self, client: &Client, options: &IssueOptions) -> Duration {
        client
            .refresh_ttl
            .or(options.refresh_ttl)
            .unwrap_or(self.config.refresh_ttl)
    }
}

/// Seconds since the epoch, for the store and the token.
fn now() -> i64 {
    crate::store::now()
}

fn instant() -> Instant {
    Instant::now()
}
