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
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use super::form::{self, Form, MissingParameter};
use super::grant_type::GrantSyntax;
use super::{Allowed, json, read_params};
use crate::config::{PassportConfig, PassportLogin};
use crate::grant::{
    ClientCredentials, Disposition, Engine, Grant, GrantError, GrantRequest, IssueOptions, Login,
    TokenRequest, TokenStyle, scope,
};
use crate::http::Body;
use crate::store::KeyAlg;

/// The dialect's endpoint.
pub struct Passport {
    engine: Arc<Engine>,
    options: IssueOptions,
    syntax: GrantSyntax,
}

/// The document's password grant and Passport's refresh at the same path.
const GRANTS: &[&str] = &["password", "refresh_token"];

impl Passport {
    /// The endpoint as `config` describes it.
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
            syntax: GrantSyntax {
                accepted: GRANTS,
                login: match config.login {
                    PassportLogin::Phone => Login::Phone,
                    PassportLogin::Any => Login::AnyName,
                },
                missing,
            },
        }
    }

    /// Serves one request; `source` is the client address after `trusted_proxies`.
    pub async fn serve(&self, request: Request<Incoming>, source: IpAddr) -> Response<Body> {
        let refuse_method = |status| {
            let message = "The token endpoint only accepts POST.";
            error(status, "invalid_request", message)
        };
        if let Some(response) = Allowed::Post.refusal(request.method(), refuse_method) {
            return response;
        }
        let (parts, body) = request.into_parts();
        let Ok(basic) = form::basic_credentials(&parts.headers) else {
            return client_failed();
        };
        let mut params = match read_params(&parts.headers, body).await {
            Ok(params) => params,
            Err(e) => return error(e.status(), "invalid_request", &e.to_string()),
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
        // The document's default grant.
        let grant_type = params.get("grant_type").unwrap_or("password").to_owned();
        let grant = self.syntax.parse(&grant_type, params)?;
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
            // RFC 8707 is the `oauth2` dialect's: this document's tokens keep their `aud`.
            resources: Vec::new(),
            options: self.options.clone(),
        })
    }
}

/// league/oauth2-server's wording of a missing parameter.
fn missing(missing: MissingParameter) -> GrantError {
    GrantError::request(format!(
        "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed. Check the `{}` parameter.",
        missing.name
    ))
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

/// Passport's (league/oauth2-server's) error shapes and messages: refused credentials are 401,
/// the rest of the caller's mistakes 400.
fn render_error(e: &GrantError, refresh: bool) -> Response<Body> {
    let refused = match Disposition::from(e) {
        Disposition::Credentials => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    super::refuse(e, refused, |status, disposition| {
        let (code, message) = wording(e, disposition, refresh);
        error(status, code, &message)
    })
}

fn wording(e: &GrantError, disposition: Disposition, refresh: bool) -> (&'static str, String) {
    let (code, message) = match (disposition, e) {
        (Disposition::Throttled(after), _) => {
            let seconds = super::retry_seconds(after);
            let message =
                format!("Too many login attempts. Please try again in {seconds} seconds.");
            return ("too_many_attempts", message);
        }
        (Disposition::Unavailable, _) => (
            "temporarily_unavailable",
            "The authorization server is temporarily unavailable. Please try again.",
        ),
        (Disposition::Internal, _) => (
            "server_error",
            "The authorization server encountered an unexpected condition.",
        ),
        (_, GrantError::InvalidGrant { .. }) if refresh => {
            ("invalid_request", "The refresh token is invalid.")
        }
        (_, GrantError::InvalidGrant { .. }) => (
            "invalid_credentials",
            "The user credentials were incorrect.",
        ),
        (_, GrantError::InvalidClient { .. }) => ("invalid_client", CLIENT_FAILED),
        (_, GrantError::UnsupportedGrantType { .. }) => (
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        ),
        (_, GrantError::UnauthorizedClient { .. }) => (
            "unauthorized_client",
            "The client is not authorized to use this grant type.",
        ),
        (_, GrantError::InvalidScope { reason }) => {
            let message =
                format!("The requested scope is invalid, unknown, or malformed: {reason}");
            return ("invalid_scope", message);
        }
        _ => return ("invalid_request", e.to_string()),
    };
    (code, message.to_owned())
}

const CLIENT_FAILED: &str = "Client authentication failed";

fn client_failed() -> Response<Body> {
    error(StatusCode::UNAUTHORIZED, "invalid_client", CLIENT_FAILED)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json(status, &json!({ "error": code, "message": message }))
}
