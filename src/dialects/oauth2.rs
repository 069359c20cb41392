//! The `oauth2` dialect: seed 003's endpoints (`/oauth2/password`, `/oauth2/client-credentials`,
//! `/oauth2/refresh-token`, `/oauth2/authorize` for the code exchange), whose answers the
//! document leaves empty, so they are RFC 6749 §5.1/§5.2's; plus what a modern client expects:
//! `/oauth2/token` (every grant, RFC 8693 token exchange included), `/oauth2/revoke` (RFC 7009),
//! `/oauth2/introspect` (RFC 7662) and `/.well-known/oauth-authorization-server` (RFC 8414).
//!
//! The single-grant endpoints take the grant from their path: `grant_type` may be omitted, and
//! another grant type there is `unsupported_grant_type` (`/oauth2/token` serves them all).
//!
//! Token exchange (admins acting as a user): `subject_token` is the admin's own access token
//! (`subject_token_type` `urn:ietf:params:oauth:token-type:access_token`), `requested_subject`
//! the numeric id of the user to act as (Keycloak's name for it); `actor_token` is refused.

pub mod cors;
mod exchange;
mod metadata;
mod userinfo;

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::form::{self, Form, FormError, MissingParameter};
use super::grant_type::{self, GrantSyntax};
use super::login::{self, LoginPages, Page};
use super::{Allowed, RequestError, json, read_body};
use crate::config::Oauth2Config;
use crate::grant::{
    ActiveToken, ClientCredentials, Disposition, Engine, Grant, GrantError, GrantRequest,
    IssueOptions, Login, TokenKind, TokenQuery, TokenRequest, scope,
};
use crate::http::Body;
use cors::Cors;
use exchange::{ACCESS_TOKEN_TYPE, exchange_request};
pub use metadata::{DISCOVERY_PATH, METADATA_PATH, Served};
/// RFC 8693's grant type.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Which of the dialect's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/oauth2/token`: every grant.
    Token,
    /// Seed 003's `/oauth2/password`.
    Password,
    /// Seed 003's `/oauth2/client-credentials`.
    ClientCredentials,
    /// Seed 003's `/oauth2/refresh-token`.
    RefreshToken,
    /// Seed 003's `POST /oauth2/authorize`: the code-for-tokens exchange.
    Authorize,
    /// RFC 7009 revocation.
    Revoke,
    /// RFC 7662 introspection.
    Introspect,
    /// RFC 8414 metadata.
    Metadata,
    /// OpenID Connect Discovery (the same document).
    Discovery,
    /// OpenID Connect UserInfo.
    UserInfo,
    /// The browser flows' pages.
    Page(Page),
}

impl Kind {
    /// Every enabled endpoint and its path.
    pub fn paths(config: &Oauth2Config) -> Vec<(Kind, &str)> {
        [
            (Kind::Token, config.token.as_deref()),
            (Kind::Password, config.password.as_deref()),
            (
                Kind::ClientCredentials,
                config.client_credentials.as_deref(),
            ),
            (Kind::RefreshToken, config.refresh_token.as_deref()),
            (Kind::Authorize, config.authorize.as_deref()),
            (Kind::Revoke, config.revoke.as_deref()),
            (Kind::Introspect, config.introspect.as_deref()),
            (Kind::Metadata, Some(METADATA_PATH)),
            (
                Kind::Discovery,
                config.openid.as_ref().map(|_| DISCOVERY_PATH),
            ),
            (
                Kind::UserInfo,
                config.openid.as_ref().and_then(|o| o.userinfo.as_deref()),
            ),
            (
                Kind::Page(Page::Authorize),
                config.authorize_page.as_deref(),
            ),
            (Kind::Page(Page::Implicit), config.implicit.as_deref()),
            (Kind::Page(Page::Logout), config.logout.as_deref()),
            (Kind::Page(Page::SignIn), config.signin.as_deref()),
        ]
        .into_iter()
        .filter_map(|(kind, path)| path.map(|p| (kind, p)))
        .collect()
    }

    /// The one grant a seed endpoint serves.
    fn fixed_grant(self) -> Option<&'static str> {
        match self {
            Kind::Password => Some("password"),
            Kind::ClientCredentials => Some("client_credentials"),
            Kind::RefreshToken => Some("refresh_token"),
            Kind::Authorize => Some("authorization_code"),
            _ => None,
        }
    }

    /// The methods a browser application may use cross-origin (CORS), for the endpoints it
    /// may call at all.
    fn cors_methods(self) -> Option<&'static str> {
        match self {
            Kind::Token | Kind::Revoke => Some("POST"),
            Kind::Metadata | Kind::Discovery => Some("GET"),
            Kind::UserInfo => Some("GET, POST"),
            _ => None,
        }
    }
}

/// The dialect's endpoints and pages.
pub struct Oauth2 {
    engine: Arc<Engine>,
    options: IssueOptions,
    metadata: Bytes,
    pages: LoginPages,
    cors: Cors,
}

/// RFC 6749's grants (the token exchange is parsed by [`exchange_request`]).
const SYNTAX: GrantSyntax = GrantSyntax {
    accepted: &[
        "password",
        "refresh_token",
        "authorization_code",
        "client_credentials",
    ],
    login: Login::AnyName,
    missing,
};

/// The upstream providers of `gateway`; a provider whose CA file cannot be used trusts
/// nothing (every sign-in there answers "not reachable"), which is logged.
fn providers(gateway: &crate::config::Config) -> Arc<crate::providers::Providers> {
    let configs = &gateway.login.providers;
    match crate::providers::Providers::new(configs, &gateway.upstream) {
        Ok(providers) => Arc::new(providers),
        Err(error) => {
            tracing::error!(%error, "an identity provider's CA file cannot be used; its sign-ins will fail");
            Arc::new(crate::providers::Providers::new_untrusted(
                configs,
                &gateway.upstream,
            ))
        }
    }
}

impl Oauth2 {
    /// The endpoints as `config` describes them, under `gateway`'s issuer.
    pub fn new(
        config: &Oauth2Config,
        gateway: &crate::config::Config,
        engine: Arc<Engine>,
    ) -> Self {
        let issuer = gateway.auth.issuer.as_str();
        let options = IssueOptions {
            access_ttl: config.access_ttl,
            refresh_ttl: config.refresh_ttl,
            format: config.token_format,
            id_token_ttl: config.openid.as_ref().map(|o| o.id_token_ttl),
            resource_indicators: true,
            ..IssueOptions::default()
        };
        // RFC 9728 §4: the resources this gateway protects are its routes' audiences.
        let mut protected: Vec<String> = gateway
            .routes
            .iter()
            .flat_map(|route| route.audiences.iter().cloned())
            .collect();
        protected.sort();
        protected.dedup();
        let served = Served::new(config, issuer).protecting(protected);
        let page_paths: Vec<&str> = [
            &config.authorize_page,
            &config.implicit,
            &config.logout,
            &config.signin,
        ]
        .into_iter()
        .filter_map(|p| p.as_deref())
        .collect();
        let metadata = Bytes::from(served.document().to_string());
        let route_hosts = gateway
            .routes
            .iter()
            .filter_map(|r| r.host.clone())
            .chain(
                gateway
                    .forward_auth
                    .iter()
                    .flat_map(|f| f.allowed_return_hosts.iter().cloned()),
            )
            .collect();
        let settings = login::PageSettings {
            login: gateway.login.clone(),
            cookie_path: login::cookie_path(&page_paths),
            openid: served.openid(),
            route_hosts,
            session_cookie: crate::authn::SessionCookie::of(gateway),
            providers: providers(gateway),
            page_paths: [&config.authorize_page, &config.implicit, &config.signin]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
        };
        let pages = LoginPages::new(Arc::clone(&engine), options.clone(), settings);
        Oauth2 {
            cors: Cors::new(Arc::clone(&engine)),
            engine,
            options,
            metadata,
            pages,
        }
    }

    /// `path` is the endpoint's own path.
    pub async fn serve(
        &self,
        kind: Kind,
        path: &str,
        request: Request<Incoming>,
        source: IpAddr,
    ) -> Response<Body> {
        let Some(methods) = kind.cors_methods() else {
            return self.serve_kind(kind, path, request, source).await;
        };
        let origin = self.cors.allowed(request.headers()).await;
        if cors::is_preflight(request.method(), request.headers()) {
            return cors::preflight(origin, methods);
        }
        let mut response = self.serve_kind(kind, path, request, source).await;
        cors::allow(&mut response, origin);
        response
    }

    /// The request's origin when CORS allows it (the JWKS document, which the proxy serves
    /// beside the dialects, answers browser applications through [`cors`] with it).
    pub async fn cors_origin(&self, headers: &hyper::HeaderMap) -> Option<HeaderValue> {
        self.cors.allowed(headers).await
    }

    async fn serve_kind(
        &self,
        kind: Kind,
        path: &str,
        request: Request<Incoming>,
        source: IpAddr,
    ) -> Response<Body> {
        match kind {
            Kind::Metadata | Kind::Discovery => return self.metadata(request.method()),
            Kind::UserInfo => return userinfo::serve(&self.engine, request).await,
            Kind::Page(page) => return self.pages.serve(page, path, request, source).await,
            _ => {}
        }
        let refuse_method =
            |status| error_response(status, "invalid_request", "this endpoint only accepts POST");
        if let Some(response) = Allowed::Post.refusal(request.method(), refuse_method) {
            return response;
        }
        let (parts, body) = request.into_parts();
        let (mut form, client) = match read_request(&parts.headers, body).await {
            Ok(read) => read,
            Err(response) => return response,
        };
        match kind {
            Kind::Revoke | Kind::Introspect => self.query(kind, form, client, source).await,
            _ => {
                let request = match self.token_request(kind, &mut form, client, source) {
                    Ok(request) => request,
                    Err(error) => return grant_error(&error),
                };
                let exchange = matches!(request.grant, GrantRequest::TokenExchange { .. });
                match self.engine.token(request).await {
                    Ok(grant) => token_response(&grant, exchange),
                    Err(error) => grant_error(&error),
                }
            }
        }
    }

    fn token_request(
        &self,
        kind: Kind,
        form: &mut Form,
        client: ClientCredentials,
        source: IpAddr,
    ) -> Result<TokenRequest, GrantError> {
        let grant_type = match (form.get("grant_type"), kind.fixed_grant()) {
            (None, Some(fixed)) => fixed.to_owned(),
            (None, None) => return Err(GrantError::request("grant_type is required")),
            (Some(given), Some(fixed)) if given != fixed => {
                return Err(grant_type::unsupported(given));
            }
            (Some(given), _) => given.to_owned(),
        };
        let grant = match grant_type.as_str() {
            TOKEN_EXCHANGE => exchange_request(form)?,
            other => SYNTAX.parse(other, form)?,
        };
        Ok(TokenRequest {
            client,
            grant,
            scope: form.get("scope").map(scope::parse),
            resources: form.all("resource").to_vec(),
            source,
            options: self.options.clone(),
        })
    }

    /// Revocation (RFC 7009) and introspection (RFC 7662) share their parameters.
    async fn query(
        &self,
        kind: Kind,
        mut form: Form,
        client: ClientCredentials,
        source: IpAddr,
    ) -> Response<Body> {
        let query = match token_query(&mut form, client, source) {
            Ok(query) => query,
            Err(error) => return grant_error(&error),
        };
        if kind == Kind::Revoke {
            return match self.engine.revoke(&query).await {
                // RFC 7009 §2.2: 200 whether or not there was anything to revoke.
                Ok(()) => super::respond(StatusCode::OK, None, "no-store", Bytes::new()),
                Err(error) => grant_error(&error),
            };
        }
        match self.engine.introspect(&query).await {
            Ok(Some(active)) => json(StatusCode::OK, &introspection(&active)),
            Ok(None) => json(StatusCode::OK, &json!({ "active": false })),
            Err(error) => grant_error(&error),
        }
    }

    fn metadata(&self, method: &Method) -> Response<Body> {
        let refuse_method =
            |status| error_response(status, "invalid_request", "this endpoint only accepts GET");
        if let Some(response) = Allowed::GetHead.refusal(method, refuse_method) {
            return response;
        }
        super::respond(
            StatusCode::OK,
            Some("application/json"),
            "public, max-age=3600",
            self.metadata.clone(),
        )
    }
}

/// The form and the client credentials, or the answer explaining why they cannot be read.
async fn read_request(
    headers: &hyper::HeaderMap,
    body: Incoming,
) -> Result<(Form, ClientCredentials), Response<Body>> {
    let basic = form::basic_credentials(headers).map_err(|e| invalid_client(&e.to_string()))?;
    let mut form = read_form(headers, body)
        .await
        .map_err(|e| error_response(e.status(), "invalid_request", &e.to_string()))?;
    let client =
        ClientCredentials::from_parts(basic, form.take("client_id"), form.take("client_secret"));
    Ok((form, client))
}

/// A form body only (RFC 6749 §3.2), checked before it is read.
async fn read_form(headers: &hyper::HeaderMap, body: Incoming) -> Result<Form, RequestError> {
    if !form::is_form(headers) {
        return Err(FormError::ContentType.into());
    }
    let bytes = read_body(body).await?;
    Ok(Form::parse(&bytes)?)
}

/// RFC 6749's wording of a missing parameter.
fn missing(missing: MissingParameter) -> GrantError {
    GrantError::request(format!("the `{}` parameter is required", missing.name))
}

pub(super) fn required(form: &mut Form, name: &'static str) -> Result<String, GrantError> {
    form.required(name).map_err(missing)
}

fn token_query(
    form: &mut Form,
    client: ClientCredentials,
    source: IpAddr,
) -> Result<TokenQuery, GrantError> {
    Ok(TokenQuery {
        hint: form.get("token_type_hint").and_then(TokenKind::parse_hint),
        token: required(form, "token")?,
        client,
        source,
    })
}

/// RFC 6749 §5.1 (and RFC 8693 §2.2.1's `issued_token_type` for an exchange).
fn token_response(grant: &Grant, exchange: bool) -> Response<Body> {
    let mut body = Map::new();
    body.insert("access_token".into(), grant.access_token.clone().into());
    body.insert("token_type".into(), grant.token_type.into());
    body.insert("expires_in".into(), grant.expires_in.as_secs().into());
    if let Some(refresh) = &grant.refresh_token {
        body.insert("refresh_token".into(), refresh.clone().into());
    }
    if !grant.scope.is_empty() {
        body.insert("scope".into(), grant.scope.join(" ").into());
    }
    if let Some(id_token) = &grant.id_token {
        body.insert("id_token".into(), id_token.clone().into());
    }
    if exchange {
        body.insert("issued_token_type".into(), ACCESS_TOKEN_TYPE.into());
    }
    json(StatusCode::OK, &Value::Object(body))
}

/// RFC 7662 §2.2.
fn introspection(token: &ActiveToken) -> Value {
    let mut body = Map::new();
    body.insert("active".into(), true.into());
    if !token.scope.is_empty() {
        body.insert("scope".into(), token.scope.join(" ").into());
    }
    if let Some(client_id) = &token.client_id {
        body.insert("client_id".into(), client_id.clone().into());
    }
    if token.kind == TokenKind::AccessToken {
        body.insert("token_type".into(), "Bearer".into());
    }
    body.insert("exp".into(), token.expires_at.into());
    if let Some(iat) = token.issued_at {
        body.insert("iat".into(), iat.into());
    }
    body.insert("sub".into(), token.subject.clone().into());
    if !token.audiences.is_empty() {
        body.insert("aud".into(), token.audiences.clone().into());
    }
    if let Some(issuer) = &token.issuer {
        body.insert("iss".into(), issuer.clone().into());
    }
    if let Some(jti) = &token.jti {
        body.insert("jti".into(), jti.clone().into());
    }
    // The type the JWT has: our `gid` is a number.
    if let Some(group) = &token.group_id {
        let gid = match group.parse::<i64>() {
            Ok(number) => number.into(),
            Err(_) => group.clone().into(),
        };
        body.insert("gid".into(), gid);
    }
    Value::Object(body)
}

/// RFC 6749 §5.2: 400 with `error` and `error_description`; `invalid_client` is 401 with a
/// `WWW-Authenticate` challenge; the back-off is 429 with `Retry-After`.
pub(super) fn grant_error(error: &GrantError) -> Response<Body> {
    if let GrantError::InvalidClient { .. } = error {
        return invalid_client(&error.to_string());
    }
    super::refuse(
        error,
        StatusCode::BAD_REQUEST,
        |status, disposition| match disposition {
            Disposition::Unavailable => error_response(
                status,
                "temporarily_unavailable",
                "the server cannot complete the request right now; retry shortly",
            ),
            Disposition::Internal => error_response(
                status,
                error.code(),
                "the server could not complete the request",
            ),
            _ => error_response(status, error.code(), &error.to_string()),
        },
    )
}

fn invalid_client(description: &str) -> Response<Body> {
    let mut response = error_response(StatusCode::UNAUTHORIZED, "invalid_client", description);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"authgate\""),
    );
    response
}

fn error_response(status: StatusCode, code: &str, description: &str) -> Response<Body> {
    json(
        status,
        &json!({ "error": code, "error_description": description }),
    )
}
