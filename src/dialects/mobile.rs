//! The `mobile` dialect (seed 000): `/auth/token` by GET (query) or POST (form), grants
//! `password` (`username`, `password`) and `refresh_token`, client id and secret as parameters
//! (a secret shipped in an app authenticates only a confidential client; a public client is
//! identified by its id). Tokens are opaque 43-character references by default.
//!
//! Answers: the token fields, `user` (profile, `id` as a string, the document's `groupid` role
//! code: 1 admin, 2 everyone else), and the same again under `response`. Failures:
//! `{"has_error":true,"errors":{"system":{"message","code"}}}` with the codes of [`ErrorCode`].

use std::net::IpAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::form::Form;
use super::grant_type::{self, GrantSyntax};
use super::{Allowed, RequestError, json, read_params};
use crate::config::MobileConfig;
use crate::grant::{
    ClientCredentials, Disposition, Engine, Grant, GrantError, GrantRequest, IssueOptions, Login,
    TokenRequest,
};
use crate::http::Body;
use crate::store::User;

/// The documented error codes (docs/config.md, `[dialects.mobile]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// A parameter is missing, repeated or malformed; wrong method or body type.
    InvalidRequest = 1501,
    /// Unknown client, or a confidential client's wrong secret.
    InvalidClient = 1502,
    /// `grant_type` other than `password` / `refresh_token`.
    UnsupportedGrantType = 1503,
    /// The client is not registered for the grant.
    UnauthorizedClient = 1504,
    /// Too many failed logins from this address (HTTP 429, `Retry-After`).
    TooManyAttempts = 1506,
    /// Our side failed (HTTP 500).
    ServerError = 1507,
    /// The store cannot be reached right now (HTTP 503, `Retry-After`): retry; the refresh
    /// token is still good.
    Unavailable = 1509,
    /// Wrong login or password, or an invalid, expired, reused or revoked refresh token.
    InvalidGrant = 1508,
}

/// The dialect's endpoint.
pub struct Mobile {
    engine: Arc<Engine>,
    options: IssueOptions,
}

/// The document's two grants; `username` is any login name.
const SYNTAX: GrantSyntax = GrantSyntax {
    accepted: &["password", "refresh_token"],
    login: Login::AnyName,
    missing: grant_type::missing,
};

/// The two switches the document's clients send.
#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    secure_urls: bool,
    include_policy: bool,
}

impl Mobile {
    /// The endpoint as `config` describes it.
    pub fn new(config: &MobileConfig, engine: Arc<Engine>) -> Self {
        Mobile {
            engine,
            options: IssueOptions {
                access_ttl: Some(config.access_ttl),
                refresh_ttl: config.refresh_ttl,
                format: config.token_format,
                dialect: "mobile",
                ..IssueOptions::default()
            },
        }
    }

    /// Serves one request; `source` is the client address after `trusted_proxies`.
    pub async fn serve(&self, request: Request<Incoming>, source: IpAddr) -> Response<Body> {
        let refuse_method = |status| {
            let message = "this endpoint accepts GET and POST";
            failure(status, ErrorCode::InvalidRequest, message)
        };
        if let Some(response) = Allowed::GetPost.refusal(request.method(), refuse_method) {
            return response;
        }
        let mut params = match read(request).await {
            Ok(params) => params,
            Err(e) => return failure(e.status(), ErrorCode::InvalidRequest, &e.to_string()),
        };
        let flags = Flags {
            secure_urls: params.get("get_secure_url") == Some("true"),
            include_policy: params.get("include_policy") == Some("true"),
        };
        let request = match self.token_request(&mut params, source) {
            Ok(request) => request,
            Err(e) => return render_error(&e),
        };
        match self.engine.token(request).await {
            Ok(grant) => render(&grant, flags),
            Err(e) => render_error(&e),
        }
    }

    fn token_request(&self, params: &mut Form, source: IpAddr) -> Result<TokenRequest, GrantError> {
        let grant_type = params.required("grant_type").map_err(grant_type::missing)?;
        let grant = SYNTAX.parse(&grant_type, params)?;
        let client = ClientCredentials::Shipped {
            id: params.required("client_id").map_err(grant_type::missing)?,
            secret: params.take("client_secret"),
        };
        Ok(TokenRequest {
            client,
            // The document's `scope` is always "": no scopes are asked for or granted.
            scope: match grant {
                GrantRequest::Password { .. } => Some(Vec::new()),
                _ => None,
            },
            grant,
            source,
            // RFC 8707 is the `oauth2` dialect's: this document's tokens keep their `aud`.
            resources: Vec::new(),
            options: self.options.clone(),
        })
    }
}

/// The parameters: the query of a GET, the form or JSON body of a POST.
async fn read(request: Request<Incoming>) -> Result<Form, RequestError> {
    let (parts, body) = request.into_parts();
    if parts.method == Method::GET {
        Ok(Form::parse(
            parts.uri.query().unwrap_or_default().as_bytes(),
        )?)
    } else {
        read_params(&parts.headers, body).await
    }
}

fn render(grant: &Grant, flags: Flags) -> Response<Body> {
    let Some(user) = grant.user() else {
        // Neither grant of this dialect yields a client token.
        return failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ServerError,
            "the grant has no user",
        );
    };
    let mut tokens = json!({
        "access_token": grant.access_token,
        "expires_in": grant.expires_in.as_secs(),
        "token_type": "bearer",
        "scope": grant.scope.join(" "),
        "refresh_token": grant.refresh_token,
        "user": user_json(user, flags),
    });
    let response = tokens.clone();
    tokens["response"] = response;
    json(StatusCode::OK, &tokens)
}

fn user_json(user: &User, flags: Flags) -> Value {
    let profile = &user.profile;
    let image = |url: &Option<String>| {
        let url = url.as_deref().unwrap_or_default();
        match url.strip_prefix("http://") {
            Some(rest) if flags.secure_urls => format!("https://{rest}"),
            _ => url.to_owned(),
        }
    };
    let mut value = json!({
        "profile_image_urls": {
            "px_16x16": image(&profile.image_small),
            "px_50x50": image(&profile.image_medium),
            "px_170x170": image(&profile.image_large),
        },
        "id": user.id.to_string(),
        "name": profile.display_name.as_deref().unwrap_or(&user.account),
        "account": user.account,
        "mail_address": user.email.as_deref().unwrap_or_default(),
        "is_premium": profile.premium,
        "x_restrict": profile.content_restriction,
        "is_mail_authorized": profile.mail_verified,
        "groupid": if user.is_admin() { 1 } else { 2 },
    });
    if flags.include_policy {
        value["require_policy_agreement"] = profile.policy_agreement_needed.into();
    }
    value
}

/// Refused credentials are 400 except the client's (401), as the document has them.
fn render_error(e: &GrantError) -> Response<Body> {
    let refused = match e {
        GrantError::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    super::refuse(e, refused, |status, disposition| {
        let (code, message) = wording(e, disposition);
        failure(status, code, &message)
    })
}

fn wording(e: &GrantError, disposition: Disposition) -> (ErrorCode, String) {
    let (code, message) = match (disposition, e) {
        (Disposition::Throttled(_), _) => return (ErrorCode::TooManyAttempts, e.to_string()),
        (Disposition::Unavailable, _) => (
            ErrorCode::Unavailable,
            "the service is temporarily unavailable; retry shortly",
        ),
        (Disposition::Internal, _) => (
            ErrorCode::ServerError,
            "the server could not complete the request",
        ),
        // One message for every refused credential: no user enumeration.
        (_, GrantError::InvalidGrant { .. }) => (
            ErrorCode::InvalidGrant,
            "the login name, password or refresh token is invalid",
        ),
        (_, GrantError::InvalidClient { .. }) => return (ErrorCode::InvalidClient, e.to_string()),
        (_, GrantError::UnsupportedGrantType { .. }) => {
            return (ErrorCode::UnsupportedGrantType, e.to_string());
        }
        (_, GrantError::UnauthorizedClient { .. }) => {
            return (ErrorCode::UnauthorizedClient, e.to_string());
        }
        _ => return (ErrorCode::InvalidRequest, e.to_string()),
    };
    (code, message.to_owned())
}

fn failure(status: StatusCode, code: ErrorCode, message: &str) -> Response<Body> {
    json(
        status,
        &json!({
            "has_error": true,
            "errors": { "system": { "message": message, "code": code as i32 } },
        }),
    )
}
