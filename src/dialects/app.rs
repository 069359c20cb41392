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

use std::borrow::Cow;

use hyper::body::Incoming;
use hyper::{HeaderMap, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::form::{Form, MissingParameter};
use super::{Allowed, RequestError, json, read_body};
use crate::config::{AppConfig, StoreConfig};
use crate::grant::{
    ClientCredentials, Disposition, Engine, GrantError, GrantRequest, IssueOptions, Login,
    TokenRequest,
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

/// The dialect's endpoints.
pub struct App {
    engine: Arc<Engine>,
    options: IssueOptions,
    sessions: Sessions,
}

/// Why a request is refused before the engine is asked.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    /// A header or parameter is missing or malformed (400).
    #[error("{0}")]
    Malformed(Cow<'static, str>),
    /// `user_id`/`group_id` without the admin's token that acting for others needs (401).
    #[error("the user_id and group_id headers need an admin's access-token")]
    NoAdminToken,
    /// The body could not be read or parsed (413 or 400).
    #[error(transparent)]
    Request(#[from] RequestError),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
            Refusal::NoAdminToken => StatusCode::UNAUTHORIZED,
            Refusal::Request(error) => error.status(),
        }
    }
}

impl From<MissingParameter> for Refusal {
    fn from(missing: MissingParameter) -> Self {
        Refusal::Malformed(missing.to_string().into())
    }
}

impl App {
    /// The endpoints as `config` describes them; fails only when the shared storage secret
    /// cannot be read or created.
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

    /// Serves one request at `kind`'s endpoint; `source` is the client address after
    /// `trusted_proxies`.
    pub async fn serve(
        &self,
        kind: Kind,
        request: Request<Incoming>,
        source: IpAddr,
    ) -> Response<Body> {
        let refuse_method = |status| failure(status, "this endpoint only accepts POST");
        if let Some(response) = Allowed::Post.refusal(request.method(), refuse_method) {
            return response;
        }
        let (request, device) = match self.read(kind, request, source).await {
            Ok(parsed) => parsed,
            Err(refusal) => return failure(refusal.status(), &refusal.to_string()),
        };
        let acting = matches!(request.grant, GrantRequest::TokenExchange { .. });
        match self.engine.token(request).await {
            Ok(grant) => match self.sessions.data(&grant, device.as_deref()) {
                Ok(data) => success(data),
                Err(error) => {
                    tracing::warn!(%error, "signing the app session tokens failed");
                    failure(StatusCode::INTERNAL_SERVER_ERROR, LOGIN_FAILED)
                }
            },
            Err(e) => render_error(&e, acting),
        }
    }

    /// The engine's request and the `device_guid`, or why the request is malformed.
    async fn read(
        &self,
        kind: Kind,
        request: Request<Incoming>,
        source: IpAddr,
    ) -> Result<(TokenRequest, Option<String>), Refusal> {
        let (parts, body) = request.into_parts();
        let bytes = read_body(body).await.map_err(RequestError::from)?;
        let headers = &parts.headers;
        let app_id = header_text(headers, "app_id")?
            .ok_or(Refusal::Malformed("the app_id header is required".into()))?;
        let acting = Acting::read(headers)?;
        // Acting for others needs no body at all, so an empty one is not a format error.
        let mut params = if bytes.iter().all(u8::is_ascii_whitespace) {
            Form::default()
        } else {
            Form::from_body(headers, &bytes).map_err(RequestError::from)?
        };
        let device = params.take("device_guid");
        let grant = if acting.asked() {
            acting.exchange()?
        } else {
            password(kind, &mut params)?
        };
        let request = TokenRequest {
            client: ClientCredentials::AppId(app_id),
            grant,
            scope: None,
            source,
            // RFC 8707 is the `oauth2` dialect's: this document's tokens keep their `aud`.
            resources: Vec::new(),
            options: self.options.clone(),
        };
        Ok((request, device))
    }
}

/// The headers with which an admin acts for a user (`user_id`) or as admin of a group
/// (`group_id`): the engine's token exchange, with the admin's own `access-token`.
struct Acting {
    subject_token: Option<String>,
    user_id: Option<i64>,
    group_id: Option<i64>,
}

impl Acting {
    fn read(headers: &HeaderMap) -> Result<Self, Refusal> {
        Ok(Acting {
            subject_token: header_text(headers, "access-token")?,
            user_id: header_id(headers, "user_id")?,
            group_id: header_id(headers, "group_id")?,
        })
    }

    fn asked(&self) -> bool {
        self.user_id.is_some() || self.group_id.is_some()
    }

    fn exchange(self) -> Result<GrantRequest, Refusal> {
        Ok(GrantRequest::TokenExchange {
            subject_token: self.subject_token.ok_or(Refusal::NoAdminToken)?,
            user_id: self.user_id,
            group_id: self.group_id,
        })
    }
}

/// The endpoint's password login.
fn password(kind: Kind, params: &mut Form) -> Result<GrantRequest, Refusal> {
    let login = match kind {
        Kind::Id => {
            let text = params.required("user_id")?;
            Login::UserId(text.trim().parse().map_err(|_| {
                Refusal::Malformed("the parameter `user_id` must be an integer user id".into())
            })?)
        }
        Kind::Login => Login::AnyName(params.required("login_name")?),
        Kind::User => Login::Account(params.required("name")?),
    };
    Ok(GrantRequest::Password {
        login,
        password: params.required("password")?,
    })
}

/// A header as text; absent or empty is `None`.
fn header_text(headers: &HeaderMap, name: &str) -> Result<Option<String>, Refusal> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| Refusal::Malformed(format!("the {name} header is not valid text").into()))?
        .trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

fn header_id(headers: &HeaderMap, name: &str) -> Result<Option<i64>, Refusal> {
    header_text(headers, name)?
        .map(|text| {
            text.parse()
                .ok()
                .filter(|_| crate::authz::is_canonical_id(&text))
                .ok_or_else(|| {
                    Refusal::Malformed(format!(
                        "the {name} header must be a decimal id (no sign, leading zeros or spaces)"
                    ).into())
                })
        })
        .transpose()
}

const LOGIN_FAILED: &str = "the server could not complete the login";

/// The engine's refusals in the envelope. `acting`: an admin's token exchange, where a refused
/// grant means the caller may not act for that user or group.
fn render_error(e: &GrantError, acting: bool) -> Response<Body> {
    let refused = match e {
        GrantError::InvalidGrant { .. } if acting => StatusCode::FORBIDDEN,
        GrantError::UnauthorizedClient { .. } => StatusCode::FORBIDDEN,
        GrantError::InvalidGrant { .. } | GrantError::InvalidClient { .. } => {
            StatusCode::UNAUTHORIZED
        }
        _ => StatusCode::BAD_REQUEST,
    };
    super::refuse(e, refused, |status, disposition| {
        failure(status, &wording(e, disposition, acting))
    })
}

fn wording(e: &GrantError, disposition: Disposition, acting: bool) -> Cow<'static, str> {
    match (disposition, e) {
        (Disposition::Throttled(after), _) => {
            let seconds = super::retry_seconds(after);
            format!("too many failed logins; try again in {seconds} seconds").into()
        }
        (Disposition::Unavailable, _) => {
            "the service is temporarily unavailable; retry shortly".into()
        }
        (Disposition::Internal, _) => LOGIN_FAILED.into(),
        (_, GrantError::InvalidGrant { reason, .. }) if acting => (*reason).into(),
        (_, GrantError::InvalidGrant { .. }) => "the login name or password is incorrect".into(),
        (_, GrantError::InvalidClient { .. }) => "the app_id does not name a registered app".into(),
        (_, GrantError::UnauthorizedClient { grant }) => {
            format!("this app may not use the {grant} grant").into()
        }
        _ => e.to_string().into(),
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

/// Property tests (issue 26): the `app` dialect's headers and form, on any bytes.
#[cfg(test)]
mod properties {
    use hyper::header::HeaderValue;
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    use super::*;

    fn value() -> impl Strategy<Value = Option<Vec<u8>>> {
        prop::option::of(prop_oneof![
            "[ +0-9-]{0,6}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..8),
        ])
    }

    proptest! {
        #![proptest_config(Config { cases: 4000, failure_persistence: None, ..Config::default() })]

        /// Any `access-token`, `user_id` and `group_id` headers: no panic, and an id read is
        /// the header's text, canonical (no sign, leading zero or inner space).
        #[test]
        fn acting_ids_are_canonical(user in value(), group in value(), token in value()) {
            let mut headers = HeaderMap::new();
            for (name, value) in [("user_id", user), ("group_id", group), ("access-token", token)] {
                if let Some(Ok(value)) = value.map(|v| HeaderValue::from_bytes(&v)) {
                    headers.insert(name, value);
                }
            }
            let Ok(acting) = Acting::read(&headers) else { return Ok(()) };
            for (name, id) in [("user_id", acting.user_id), ("group_id", acting.group_id)] {
                if let Some(id) = id {
                    let text = headers[name].to_str().unwrap_or_default().trim();
                    prop_assert_eq!(id.to_string(), text);
                }
            }
        }

        /// Any form on any of the three endpoints: no panic, and `/token/id`'s user id is the
        /// integer the form says.
        #[test]
        fn password_logins_are_total(
            pairs in prop::collection::vec((
                prop::sample::select(vec!["user_id", "login_name", "name", "password", "x"]),
                "[ +0-9a-z-]{0,6}",
            ), 0..6),
            kind in prop::sample::select(vec![Kind::Id, Kind::Login, Kind::User]),
        ) {
            let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
            let Ok(mut form) = Form::parse(body.as_bytes()) else { return Ok(()) };
            let said = form.get("user_id").map(str::to_owned);
            if let Ok(GrantRequest::Password { login: Login::UserId(id), password }) = password(kind, &mut form) {
                prop_assert!(!password.is_empty());
                prop_assert_eq!(said.and_then(|s| s.trim().parse().ok()), Some(id));
            }
        }
    }
}
