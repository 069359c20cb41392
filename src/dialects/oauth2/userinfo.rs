//! OpenID Connect UserInfo (Core §5.3): `GET` or `POST` with a bearer access token (RFC 6750:
//! the `Authorization` header, or `access_token` in a `POST` form body, never both); the
//! claims the token's scopes release, as JSON. Refusals are RFC 6750 §3's: 401 with a `Bearer`
//! challenge (`invalid_token`; no error code when no token was sent), 403
//! `insufficient_scope` for a token without `openid`, 400 `invalid_request`.

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::super::form::{self, Form};
use super::super::{Allowed, json, read_body};
use super::grant_error;
use crate::authn::{AuthnError, extract_token};
use crate::grant::{Engine, UserInfoError};
use crate::http::Body;

/// Answers one UserInfo request.
pub(super) async fn serve(engine: &Engine, request: Request<Incoming>) -> Response<Body> {
    let refuse_method = |status| refusal(status, Some("invalid_request"), "use GET or POST");
    if let Some(response) = Allowed::GetPost.refusal(request.method(), refuse_method) {
        return response;
    }
    let (parts, body) = request.into_parts();
    // The proxy's own extraction (RFC 6750 §2.1): one bearer token, token68 syntax.
    let header_token = match extract_token(&parts.headers, &[]) {
        Ok(token) => Some(token.to_owned()),
        Err(AuthnError::Missing) => None,
        Err(error) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
                &error.to_string(),
            );
        }
    };
    let mut body_token = None;
    if parts.method == Method::POST && form::is_form(&parts.headers) {
        let parsed = match read_body(body).await {
            Ok(bytes) => Form::parse(&bytes),
            Err(_) => {
                return refusal(
                    StatusCode::BAD_REQUEST,
                    Some("invalid_request"),
                    "the body could not be read",
                );
            }
        };
        match parsed {
            Ok(mut form) => body_token = form.take("access_token"),
            Err(error) => {
                return refusal(
                    StatusCode::BAD_REQUEST,
                    Some("invalid_request"),
                    &error.to_string(),
                );
            }
        }
    }
    let token = match (header_token, body_token) {
        (Some(_), Some(_)) => {
            let description = "send the access token once: in the header or in the body";
            return refusal(
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
                description,
            );
        }
        (Some(token), None) | (None, Some(token)) => token,
        (None, None) => {
            return refusal(
                StatusCode::UNAUTHORIZED,
                None,
                "an access token is required",
            );
        }
    };
    match engine.userinfo(&token).await {
        Ok(info) => {
            let mut body = json!({ "sub": info.subject });
            if let (Value::Object(map), Ok(Value::Object(claims))) =
                (&mut body, serde_json::to_value(&info.claims))
            {
                map.extend(claims);
            }
            json(StatusCode::OK, &body)
        }
        Err(UserInfoError::InvalidToken(description)) => {
            refusal(StatusCode::UNAUTHORIZED, Some("invalid_token"), description)
        }
        Err(error @ UserInfoError::InsufficientScope) => refusal(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            &error.to_string(),
        ),
        Err(UserInfoError::Failed(error)) => grant_error(&error),
    }
}

/// RFC 6750 §3: the challenge (with `error` only when a token was presented or the request
/// was malformed) and the same code and description as JSON.
fn refusal(status: StatusCode, code: Option<&str>, description: &str) -> Response<Body> {
    let mut challenge = String::from("Bearer realm=\"authgate\"");
    if let Some(code) = code {
        // RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E (a form error may
        // quote a parameter name the client chose).
        let safe: String = description
            .chars()
            .map(|c| match c {
                ' ' | '!' | '#'..='[' | ']'..='~' => c,
                _ => '?',
            })
            .collect();
        challenge.push_str(&format!(", error=\"{code}\", error_description=\"{safe}\""));
        if code == "insufficient_scope" {
            challenge.push_str(", scope=\"openid\"");
        }
    }
    // Without a token there is no error code (RFC 6750 §3.1); the body says what the proxy
    // says for a missing token.
    let body = json!({ "error": code.unwrap_or("unauthorized"), "error_description": description });
    let mut response = json(status, &body);
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
