//! The `app` dialect (seed 002): `POST /token/id` (numeric user id), `/token/login` (any login
//! name: phone, e-mail or user name) and `/token/user` (user name), each with `password`; body
//! JSON or form. The `app_id` header names a registered *public* client by its app id.
//!
//! With an admin's token in the `access-token` header, a `user_id` header obtains a token for
//! that user and a `group_id` header the admin's own token acting as admin of that group: both
//! are the engine's token exchange (no password, `act` claim, audited); anyone else is refused.
//!
//! Every answer is the envelope `{code, data, message}`: `code` 200 and `message` null on
//! success; on failure `data` null and `code` equal to the HTTP status. `data` carries the
//! access token and the session's companion credentials (see [`session`]).

mod session;

use std::net::IpAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::form::Form;
use super::{BodyError, json, read_body};
use crate::config::{AppConfig, StoreConfig};
use crate::grant::{
    ClientCredentials, Engine, GrantError, GrantRequest, IssueOptions, Login, TokenRequest,
};
use crate::http::Body;
use crate::keyring::Keyring;
use crate::store::StoreError;

pub use session::Sessions;

/// Which of the three endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/token/id`: `user_id` + `password`.
    Id,
    /// `/token/login`: `login_name` + `password`.
    Login,
    /// `/token/user`: `name` + `password`.
    User,
}

impl Kind {
    /// The configured (switched-on) endpoints.
    pub fn paths(config: &AppConfig) -> Vec<(Kind, &str)> {
        [
            (Kind::Id, &config.id),
            (Kind::Login, &config.login),
            (Kind::User, &config.user),
        ]
        .into_iter()
        .filter_map(|(kind, path)| path.as_deref().map(|p| (kind, p)))
        .collect()
    }
}

pub struct App {
    engine: Arc<Engine>,
    options: IssueOptions,
    sessions: Sessions,
}

/// A refusal before the engine is asked: status and message.
type Refusal = (StatusCode, String);

impl App {
    pub fn new(
        config: &AppConfig,
        store: &StoreConfig,
        engine: Arc<Engine>,
        keyring: Arc<Keyring>,
    ) -> Result<Self, StoreError> {
        let issuer = engine.config().issuer.clone();
        Ok(App {
            engine,
            options: IssueOptions {
                access_ttl: Some(config.access_ttl),
                format: config.token_format,
                dialect: "app",
                ..IssueOptions::default()
            },
            sessions: Sessions::new(config, store, issuer, keyring)?,
        })
    }

    pub async fn serve(
        &self,
        kind: Kind,
        request: Request<Incoming>,
        source: IpAddr,
    ) -> Response<Body> {
        if request.method() != Method::POST {
            let mut response = failure(
                StatusCode::METHOD_NOT_ALLOWED,
                "this endpoint only accepts POST",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let (parts, body) = request.into_parts();
        let bytes = match read_body(body).await {
            Ok(bytes) => bytes,
            Err(e @ BodyError::TooLarge) => {
                return failure(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string());
            }
            Err(e @ BodyError::Read) => return failure(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let (request, device) = match self.token_request(kind, &parts.headers, &bytes, source) {
            Ok(parsed) => parsed,
            Err((status, message)) => return failure(status, &message),
        };
        let acting = matches!(request.grant, GrantRequest::TokenExchange { .. });
        match self.engine.token(request).await {
            Ok(grant) => match self.sessions.data(&grant, device.as_deref()) {
                Ok(data) => success(data),
                Err(error) => {
                    tracing::warn!(%error, "signing the app session tokens failed");
                    failure(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the server could not complete the login",
                    )
                }
            },
            Err(e) => render_error(&e, acting),
        }
    }

    /// The engine's request and the `device_guid`, or why the request is malformed.
    fn token_request(
        &self,
        kind: Kind,
        headers: &HeaderMap,
        body: &[u8],
        source: IpAddr,
    ) -> Result<(TokenRequest, Option<String>), Refusal> {
        let app_id = header_text(headers, "app_id")?
            .ok_or_else(|| bad_request("the app_id header is required"))?;
        let subject_token = header_text(headers, "access-token")?;
        let user_id = header_id(headers, "user_id")?;
        let group_id = header_id(headers, "group_id")?;
        // Acting for others needs no body at all, so an empty one is not a format error.
        let mut params = if body.iter().all(u8::is_ascii_whitespace) {
            Form::default()
        } else {
            Form::from_body(headers, body).map_err(|e| bad_request(&e.to_string()))?
        };
        let device = params.take("device_guid");
        let grant = if user_id.is_some() || group_id.is_some() {
            let subject_token = subject_token.ok_or_else(|| {
                (
                    StatusCode::UNAUTHORIZED,
                    "the user_id and group_id headers need an admin's access-token".to_owned(),
                )
            })?;
            GrantRequest::TokenExchange {
                subject_token,
                user_id,
                group_id,
            }
        } else {
            let login = match kind {
                Kind::Id => {
                    let text = required(&mut params, "user_id")?;
                    Login::UserId(text.trim().parse().map_err(|_| {
                        bad_request("the parameter `user_id` must be an integer user id")
                    })?)
                }
                Kind::Login => Login::AnyName(required(&mut params, "login_name")?),
                Kind::User => Login::Account(required(&mut params, "name")?),
            };
            GrantRequest::Password {
                login,
                password: required(&mut params, "password")?,
            }
        };
        let request = TokenRequest {
            client: ClientCredentials::AppId(app_id),
            grant,
            scope: None,
            source,
            options: self.options.clone(),
        };
        Ok((request, device))
    }
}

fn required(params: &mut Form, name: &str) -> Result<String, Refusal> {
    params
        .take(name)
        .ok_or_else(|| bad_request(&format!("the parameter `{name}` is required")))
}

/// A header as text; absent or empty is `None`.
fn header_text(headers: &HeaderMap, name: &str) -> Result<Option<String>, Refusal> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| bad_request(&format!("the {name} header is not valid text")))?
                .trim();
            Ok((!text.is_empty()).then(|| text.to_owned()))
        }
    }
}

fn header_id(headers: &HeaderMap, name: &str) -> Result<Option<i64>, Refusal> {
    header_text(headers, name)?
        .map(|text| {
            text.parse()
                .ok()
                .filter(|_| crate::authz::is_canonical_id(&text))
                .ok_or_else(|| {
                    bad_request(&format!(
                        "the {name} header must be a decimal id (no sign, leading zeros or spaces)"
                    ))
                })
        })
        .transpose()
}

fn bad_request(message: &str) -> Refusal {
    (StatusCode::BAD_REQUEST, message.to_owned())
}

/// The engine's refusals in the envelope. `acting`: an admin's token exchange, where a refused
/// grant means the caller may not act for that user or group.
fn render_error(e: &GrantError, acting: bool) -> Response<Body> {
    match e {
        GrantError::InvalidGrant { reason, .. } if acting => failure(StatusCode::FORBIDDEN, reason),
        GrantError::InvalidGrant { .. } => failure(
            StatusCode::UNAUTHORIZED,
            "the login name or password is incorrect",
        ),
        GrantError::InvalidClient { .. } => failure(
            StatusCode::UNAUTHORIZED,
            "the app_id does not name a registered app",
        ),
        GrantError::UnauthorizedClient { grant } => failure(
            StatusCode::FORBIDDEN,
            &format!("this app may not use the {grant} grant"),
        ),
        GrantError::UnsupportedGrantType { .. }
        | GrantError::InvalidScope { .. }
        | GrantError::InvalidRequest { .. } => failure(StatusCode::BAD_REQUEST, &e.to_string()),
        GrantError::TooManyAttempts { retry_after } => {
            let seconds = retry_after.as_secs().max(1);
            let message = format!("too many failed logins; try again in {seconds} seconds");
            super::retry_after(
                failure(StatusCode::TOO_MANY_REQUESTS, &message),
                *retry_after,
            )
        }
        GrantError::Internal { .. } if e.is_unavailable() => {
            tracing::warn!(error = %e, "app token request failed: the store is unreachable");
            super::retry_after(
                failure(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the service is temporarily unavailable; retry shortly",
                ),
                std::time::Duration::from_secs(1),
            )
        }
        GrantError::Internal { .. } => {
            tracing::warn!(error = %e, "app token request failed on our side");
            failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server could not complete the login",
            )
        }
    }
}

fn success(data: Value) -> Response<Body> {
    json(
        StatusCode::OK,
        &json!({ "code": 200, "data": data, "message": null }),
    )
}

fn failure(status: StatusCode, message: &str) -> Response<Body> {
    json(
        status,
        &json!({ "code": status.as_u16(), "data": null, "message": message }),
    )
}
