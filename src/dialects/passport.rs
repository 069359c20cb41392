//! The `passport` dialect (seed 001): Laravel Passport's `POST /oauth/token`. The `password`
//! grant with the phone number as `username` (any login name when configured) and, as real
//! Passport servers do at the same path, `refresh_token`. Body form or JSON; client credentials
//! in the body (or HTTP Basic).
//!
//! Answers: `{"token_type":"Bearer","expires_in":31536000,"access_token":…,"refresh_token":…}`
//! with an RS256 JWT shaped like Passport's (see [`crate::tokens::TokenStyle::Passport`]).
//! Failures are Passport's `{"error","message"}`: wrong credentials exactly
//! `401 {"error":"invalid_credentials","message":"The user credentials were incorrect."}`.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::form::{self, Form};
use super::{BodyError, json, read_body};
use crate::config::{PassportConfig, PassportLogin};
use crate::grant::{
    ClientCredentials, Engine, Grant, GrantError, GrantRequest, IssueOptions, Login, TokenRequest,
    TokenStyle, scope,
};
use crate::http::Body;
use crate::store::KeyAlg;

pub struct Passport {
    engine: Arc<Engine>,
    options: IssueOptions,
    login: PassportLogin,
}

impl Passport {
    pub fn new(config: &PassportConfig, engine: Arc<Engine>) -> Self {
        Passport {
            engine,
            options: IssueOptions {
                alg: KeyAlg::Rs256,
                access_ttl: Some(config.access_ttl),
                refresh_ttl: config.refresh_ttl,
                style: TokenStyle::Passport,
                format: config.token_format,
                dialect: "passport",
                ..IssueOptions::default()
            },
            login: config.login,
        }
    }

    pub async fn serve(&self, request: Request<Incoming>, source: IpAddr) -> Response<Body> {
        if request.method() != Method::POST {
            let mut response = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "The token endpoint only accepts POST.",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let (parts, body) = request.into_parts();
        let basic = match form::basic_credentials(&parts.headers) {
            Ok(basic) => basic,
            Err(_) => return client_failed(),
        };
        let bytes = match read_body(body).await {
            Ok(bytes) => bytes,
            Err(e @ BodyError::TooLarge) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "invalid_request",
                    &e.to_string(),
                );
            }
            Err(e @ BodyError::Read) => {
                return error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string());
            }
        };
        let mut params = match Form::from_body(&parts.headers, &bytes) {
            Ok(params) => params,
            Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
        };
        let client = ClientCredentials::from_parts(
            basic,
            params.take("client_id"),
            params.take("client_secret"),
        );
        let request = match self.token_request(&mut params, client, source) {
            Ok(request) => request,
            Err(e) => return render_error(&e, false),
        };
        let refresh = matches!(request.grant, GrantRequest::RefreshToken { .. });
        match self.engine.token(request).await {
            Ok(grant) => render(&grant),
            Err(e) => render_error(&e, refresh),
        }
    }

    fn token_request(
        &self,
        params: &mut Form,
        client: ClientCredentials,
        source: IpAddr,
    ) -> Result<TokenRequest, GrantError> {
        let required = |params: &mut Form, name: &'static str| {
            params.take(name).ok_or_else(|| GrantError::InvalidRequest {
                reason: format!(
                    "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed. Check the `{name}` parameter."
                )
                .into(),
            })
        };
        // The document's default grant, and Passport's refresh at the same path.
        let grant = match params.get("grant_type").unwrap_or("password") {
            "password" => {
                let username = required(params, "username")?;
                GrantRequest::Password {
                    login: match self.login {
                        PassportLogin::Phone => Login::Phone(username),
                        PassportLogin::Any => Login::AnyName(username),
                    },
                    password: required(params, "password")?,
                }
            }
            "refresh_token" => GrantRequest::RefreshToken {
                refresh_token: required(params, "refresh_token")?,
            },
            other => {
                return Err(GrantError::UnsupportedGrantType {
                    grant: other.to_owned(),
                });
            }
        };
        Ok(TokenRequest {
            client,
            scope: match (&grant, params.get("scope")) {
                (_, Some(text)) => Some(scope::parse(text)),
                // Passport grants exactly the scopes asked for: none when `scope` is empty…
                (GrantRequest::Password { .. }, None) => Some(Vec::new()),
                // …and a refresh without `scope` keeps what was granted.
                (_, None) => None,
            },
            grant,
            source,
            options: self.options.clone(),
        })
    }
}

fn render(grant: &Grant) -> Response<Body> {
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": grant.expires_in.as_secs(),
        "access_token": grant.access_token,
    });
    if let Some(refresh) = &grant.refresh_token {
        body["refresh_token"] = refresh.clone().into();
    }
    json(StatusCode::OK, &body)
}

/// Passport's (league/oauth2-server's) error shapes and messages.
fn render_error(e: &GrantError, refresh: bool) -> Response<Body> {
    match e {
        GrantError::InvalidGrant { .. } if refresh => error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "The refresh token is invalid.",
        ),
        GrantError::InvalidGrant { .. } => error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "The user credentials were incorrect.",
        ),
        GrantError::InvalidClient { .. } => client_failed(),
        GrantError::UnsupportedGrantType { .. } => error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        ),
        GrantError::UnauthorizedClient { .. } => error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "The client is not authorized to use this grant type.",
        ),
        GrantError::InvalidScope { reason } => error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!("The requested scope is invalid, unknown, or malformed: {reason}"),
        ),
        GrantError::InvalidRequest { reason } => {
            error(StatusCode::BAD_REQUEST, "invalid_request", reason)
        }
        GrantError::TooManyAttempts { retry_after } => {
            let seconds = retry_after.as_secs().max(1);
            let response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                &format!("Too many login attempts. Please try again in {seconds} seconds."),
            );
            super::retry_after(response, *retry_after)
        }
        GrantError::Internal { .. } if e.is_unavailable() => {
            tracing::warn!(error = %e, "passport token request failed: the store is unreachable");
            let response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The authorization server is temporarily unavailable. Please try again.",
            );
            super::retry_after(response, std::time::Duration::from_secs(1))
        }
        GrantError::Internal { .. } => {
            tracing::warn!(error = %e, "passport token request failed on our side");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "The authorization server encountered an unexpected condition.",
            )
        }
    }
}

fn client_failed() -> Response<Body> {
    error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Client authentication failed",
    )
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json(status, &json!({ "error": code, "message": message }))
}
