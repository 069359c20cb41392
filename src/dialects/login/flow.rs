//! One authorization request through the login page: the client and redirect URI first (a
//! failure there shows an error page and redirects nowhere), then the request's checks, then
//! the person (a live session, or the login form and its submission), and last the way back
//! to the client ([`Back`]) with a code, a token or an error.

use std::borrow::Cow;
use std::net::IpAddr;

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use super::{
    CSRF_ADVICE, Cookies, LoginPages, Refused, SetCookies, csrf_ok, error_page, internal, page,
    random_failed, see_other, set_cookies,
};
use crate::dialects::form::Form;
use crate::grant::{
    AuthorizationRequest, Disposition, GrantError, RedirectTarget, ResponseType, scope,
};
use crate::http::Body;
use crate::store::User;
use crate::store::now;

/// The authorization request's parameters (query on GET, hidden fields on POST).
const CARRIED: [&str; 13] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "nonce",
    "prompt",
    "max_age",
    "login_hint",
    "resource",
];

/// Longest `nonce` accepted (it travels back in the ID token; OpenID Connect sets no bound).
const MAX_NONCE: usize = 512;

/// OpenID Connect's authentication request parameters (Core §3.1.2.1).
#[derive(Debug, Default, Clone, Copy)]
struct Prompt {
    /// `prompt=none`: never show a page; no session → `login_required`.
    none: bool,
    /// `prompt=login`: ask for the password even with a live session.
    login: bool,
    /// `max_age`: a session older than this many seconds does not count.
    max_age: Option<i64>,
}

impl Prompt {
    fn parse(params: &Form) -> Result<Prompt, (&'static str, Cow<'static, str>)> {
        let mut prompt = Prompt::default();
        let values = params.get("prompt").unwrap_or_default();
        for value in values.split_whitespace() {
            match value {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                // No consent screen and one account per session: both already satisfied.
                "consent" | "select_account" => {}
                other => {
                    let description = format!("prompt={other} is not supported");
                    return Err(("invalid_request", description.into()));
                }
            }
        }
        // OpenID Connect Core §3.1.2.1: `none` with any other value is an error.
        if prompt.none && values.split_whitespace().count() > 1 {
            let description = "prompt=none cannot be combined with other values";
            return Err(("invalid_request", description.into()));
        }
        if let Some(text) = params.get("max_age") {
            match text.parse::<i64>() {
                Ok(seconds) if seconds >= 0 => prompt.max_age = Some(seconds),
                _ => {
                    let description = "max_age must be a number of seconds";
                    return Err(("invalid_request", description.into()));
                }
            }
        }
        if params.get("nonce").is_some_and(|n| n.len() > MAX_NONCE) {
            let description = format!("nonce is longer than {MAX_NONCE} characters");
            return Err(("invalid_request", description.into()));
        }
        Ok(prompt)
    }

    /// May a session that signed in at `authenticated_at` answer this request?
    fn accepts(&self, authenticated_at: i64, now: i64) -> bool {
        !self.login && self.max_age.is_none_or(|max| now - authenticated_at <= max)
    }
}

/// One authorization request being served.
pub(super) struct Flow<'a> {
    pub(super) pages: &'a LoginPages,
    pub(super) path: &'a str,
    pub(super) response_type: ResponseType,
    pub(super) params: &'a Form,
    pub(super) cookies: &'a Cookies,
    pub(super) source: IpAddr,
}

impl Flow<'_> {
    /// Serves the page: GET shows it (or completes at once for a live session), POST is the
    /// submitted form.
    pub(super) async fn run(&self, post: bool) -> Response<Body> {
        let target = match self.target().await {
            Ok(target) => target,
            Err(response) => return response,
        };
        let mut back = Back {
            target: &target,
            carrier: match self.response_type {
                ResponseType::Code => Carrier::Query,
                ResponseType::Token => Carrier::Fragment,
            },
            state: self.params.get("state"),
            issuer: &self.pages.engine.config().issuer,
        };
        match self.carrier() {
            Ok(carrier) => back.carrier = carrier,
            Err(description) => return back.error("invalid_request", &description, no_cookies()),
        }
        let checked = self
            .check(&back)
            .and_then(|granted| Ok((granted, Prompt::parse(self.params)?)));
        let (granted, prompt) = match checked {
            Ok(checked) => checked,
            Err((code, description)) => {
                return back.error(code, &description, no_cookies());
            }
        };
        if post {
            self.submitted(&back, granted).await
        } else {
            self.show(&back, granted, prompt).await
        }
    }

    /// `response_mode`: the code flow answers in the query (default) or as a form post; the
    /// implicit flow only in the fragment. What [`Served`](crate::dialects::oauth2::Served)
    /// advertises is this.
    fn carrier(&self) -> Result<Carrier, String> {
        match (self.response_type, self.params.get("response_mode")) {
            (ResponseType::Code, None | Some("query")) => Ok(Carrier::Query),
            (ResponseType::Code, Some("form_post")) => Ok(Carrier::FormPost),
            (ResponseType::Token, None | Some("fragment")) => Ok(Carrier::Fragment),
            (_, Some(other)) => Err(format!("response_mode={other} is not supported here")),
        }
    }

    /// The client and its redirect URI; refusals here are pages, never redirects.
    async fn target(&self) -> Result<RedirectTarget, Response<Body>> {
        let unknown = |message| error_page(StatusCode::BAD_REQUEST, "Unknown application", message);
        let Some(client_id) = self.params.get("client_id") else {
            return Err(unknown(
                "The application did not say who it is (client_id is missing).",
            ));
        };
        let engine = &self.pages.engine;
        match engine
            .redirect_target(client_id, self.params.get("redirect_uri"))
            .await
        {
            Ok(target) => Ok(target),
            Err(GrantError::InvalidClient { .. }) => Err(unknown(
                "No application is registered under this client_id.",
            )),
            Err(GrantError::InvalidRequest { reason }) => Err(error_page(
                StatusCode::BAD_REQUEST,
                "Invalid redirect address",
                &reason,
            )),
            Err(error) => Err(internal(&error)),
        }
    }

    /// `response_type`, scope and PKCE: the scopes granted, or the error (RFC 6749 §4.1.2.1
    /// code and description) to send back.
    fn check(&self, back: &Back<'_>) -> Result<Vec<String>, (&'static str, Cow<'static, str>)> {
        let expected = match self.response_type {
            ResponseType::Code => "code",
            ResponseType::Token => "token",
        };
        match self.params.get("response_type") {
            Some(given) if given == expected => {}
            Some(_) => {
                let description = format!("this endpoint serves response_type={expected}");
                return Err(("unsupported_response_type", description.into()));
            }
            None => return Err(("invalid_request", "response_type is required".into())),
        }
        let requested = self.params.get("scope").map(scope::parse);
        self.pages
            .engine
            .check_authorization(
                back.target,
                self.response_type,
                requested.as_deref(),
                self.params.get("code_challenge"),
                self.params.get("code_challenge_method"),
                self.params.all("resource"),
            )
            .map_err(|error| (error.code(), error.to_string().into()))
    }

    /// GET: a live session completes at once (unless `prompt=login` or `max_age` say it is
    /// not enough); otherwise the login form, or with `prompt=none` `login_required`.
    async fn show(&self, back: &Back<'_>, granted: Vec<String>, prompt: Prompt) -> Response<Body> {
        if let Some(token) = &self.cookies.session {
            match self.pages.session(token).await {
                Ok(Some(session))
                    if prompt.accepts(session.authenticated_at, now())
                        && self.hint_allows(&session.user) =>
                {
                    let signed_in = session.authenticated_at;
                    let user = &session.user;
                    return self
                        .complete(back, user, granted, signed_in, no_cookies())
                        .await;
                }
                Ok(_) => {}
                Err(error) => return internal(&error),
            }
        }
        if prompt.none {
            let description = "the person is not signed in (prompt=none)";
            return back.error("login_required", description, no_cookies());
        }
        let mut set = SetCookies::default();
        let hint = self.params.get("login_hint").unwrap_or_default();
        match self.pages.csrf(self.cookies, &mut set) {
            Ok(csrf) => self.form(back.target, &csrf, hint, None, StatusCode::OK, set),
            Err(error) => random_failed(&error),
        }
    }

    /// `id_token_hint` at the authorization endpoint (Core §3.1.2.1): a session of someone
    /// else than the hinted person does not answer the request (with `prompt=none` that is
    /// `login_required`). A hint we cannot verify is ignored, as the specification allows.
    fn hint_allows(&self, user: &User) -> bool {
        match self.params.get("id_token_hint") {
            Some(token) => self
                .pages
                .engine
                .id_token_hint(token)
                .is_none_or(|hint| hint.subject == user.id.to_string()),
            None => true,
        }
    }

    /// The login form was submitted.
    async fn submitted(&self, back: &Back<'_>, granted: Vec<String>) -> Response<Body> {
        if !csrf_ok(self.params, self.cookies) {
            return error_page(StatusCode::FORBIDDEN, "This form has expired", CSRF_ADVICE);
        }
        if self.params.get("action") == Some("cancel") {
            let description = "the person declined to sign in";
            return back.error("access_denied", description, no_cookies());
        }
        match self.pages.check_password(self.params, self.source).await {
            Ok(user) => self.signed_in(back, &user, granted).await,
            Err(Refused::Again(again)) => {
                let username = self.params.get("username").unwrap_or_default();
                let response = self.again(back, username, &again.message, again.status);
                again.retry(response)
            }
            Err(Refused::Internal(error)) => internal(&error),
        }
    }

    /// The form again, with what the person typed (never the password) and why.
    fn again(
        &self,
        back: &Back<'_>,
        username: &str,
        message: &str,
        status: StatusCode,
    ) -> Response<Body> {
        let csrf = self.cookies.csrf.clone().unwrap_or_default();
        let target = back.target;
        self.form(target, &csrf, username, Some(message), status, no_cookies())
    }

    /// A good login: a session for the next time, then the code or the token.
    async fn signed_in(
        &self,
        back: &Back<'_>,
        user: &User,
        granted: Vec<String>,
    ) -> Response<Body> {
        // A sign-in rotates the session: whatever session this browser carried before (perhaps
        // planted by someone else: session fixation) ends, and a new id is issued.
        let cookie = match self.pages.rotate(user, self.cookies).await {
            Ok(cookie) => cookie,
            Err(error) => return internal(&error),
        };
        self.complete(back, user, granted, now(), SetCookies(vec![cookie]))
            .await
    }

    /// The person is known: hand out the code or the token.
    async fn complete(
        &self,
        back: &Back<'_>,
        user: &User,
        granted: Vec<String>,
        authenticated_at: i64,
        set: SetCookies,
    ) -> Response<Body> {
        match self.response_type {
            ResponseType::Code => match self
                .pages
                .engine
                .issue_code(self.code(back, user, granted, authenticated_at))
                .await
            {
                Ok(code) => back.success(&[("code", code)], set),
                Err(error) => back.failure(&error, set),
            },
            ResponseType::Token => {
                let engine = &self.pages.engine;
                let options = &self.pages.options;
                let resources = self.params.all("resource");
                match engine
                    .implicit(
                        back.target,
                        user,
                        granted,
                        resources,
                        options,
                        authenticated_at,
                    )
                    .await
                {
                    Ok(grant) => {
                        let mut fields = vec![
                            ("access_token", grant.access_token.clone()),
                            ("token_type", grant.token_type.to_owned()),
                            ("expires_in", grant.expires_in.as_secs().to_string()),
                        ];
                        if !grant.scope.is_empty() {
                            fields.push(("scope", grant.scope.join(" ")));
                        }
                        back.success(&fields, set)
                    }
                    Err(error) => back.failure(&error, set),
                }
            }
        }
    }

    /// The code's request: who (and since when), for which client and redirect URI, its PKCE
    /// challenge and OpenID Connect nonce.
    fn code(
        &self,
        back: &Back<'_>,
        user: &User,
        granted: Vec<String>,
        authenticated_at: i64,
    ) -> AuthorizationRequest {
        let target = back.target;
        let param = |name| self.params.get(name).map(str::to_owned);
        AuthorizationRequest {
            client_id: target.client.id.clone(),
            user_id: user.id,
            redirect_uri: target.named.then(|| target.redirect_uri.clone()),
            scope: Some(granted),
            code_challenge: param("code_challenge"),
            code_challenge_method: param("code_challenge_method"),
            nonce: param("nonce"),
            auth_time: Some(authenticated_at),
            resources: self.params.all("resource").to_vec(),
        }
    }

    fn form(
        &self,
        target: &RedirectTarget,
        csrf: &str,
        username: &str,
        error: Option<&str>,
        status: StatusCode,
        set: SetCookies,
    ) -> Response<Body> {
        let hidden: Vec<(&str, String)> = CARRIED
            .iter()
            .flat_map(|name| match self.params.all(name) {
                [] => self
                    .params
                    .get(name)
                    .map(|v| (*name, v.to_owned()))
                    .into_iter()
                    .collect(),
                values => values
                    .iter()
                    .map(|v| (*name, v.clone()))
                    .collect::<Vec<_>>(),
            })
            .collect();
        let client_name = target
            .client
            .display_name
            .as_deref()
            .unwrap_or(&target.client.id);
        let providers = self.pages.provider_buttons(self.path, &hidden);
        let html = page::login(&page::LoginForm {
            action: self.path,
            client_name,
            hidden: &hidden,
            csrf,
            username,
            error,
            providers: &providers,
            password: self.pages.login.password_form,
        });
        self.pages.html(status, html, set)
    }
}

fn no_cookies() -> SetCookies {
    SetCookies::default()
}

/// Where an error or a result goes back: the query (code flow), a form post (code flow,
/// `response_mode=form_post`) or the fragment (implicit).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Carrier {
    Query,
    FormPost,
    Fragment,
}

/// The way back to the client: its redirect URI, with `state` and (RFC 9207) `iss`.
struct Back<'a> {
    target: &'a RedirectTarget,
    carrier: Carrier,
    state: Option<&'a str>,
    issuer: &'a str,
}

impl<'a> Back<'a> {
    fn success<'f>(&'f self, fields: &'f [(&'f str, String)], set: SetCookies) -> Response<Body> {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.redirect(pairs, set)
    }

    /// RFC 6749 §4.1.2.1 / §4.2.2.1.
    fn error(&self, code: &str, description: &str, set: SetCookies) -> Response<Body> {
        self.redirect(
            vec![("error", code), ("error_description", description)],
            set,
        )
    }

    /// The engine's failure, sent back as RFC 6749 §4.1.2.1 spells it.
    fn failure(&self, error: &GrantError, set: SetCookies) -> Response<Body> {
        match error.disposition() {
            Disposition::Unavailable => self.error(
                "temporarily_unavailable",
                "the server cannot complete the request right now; retry shortly",
                set,
            ),
            Disposition::Internal => self.error(
                "server_error",
                "the server could not complete the request",
                set,
            ),
            _ => self.error(error.code(), &error.to_string(), set),
        }
    }

    /// `pairs`, then `state` and `iss`, to the redirect URI.
    fn redirect<'f>(
        &'f self,
        mut pairs: Vec<(&'f str, &'f str)>,
        set: SetCookies,
    ) -> Response<Body> {
        if let Some(state) = self.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", self.issuer));
        let uri = &self.target.redirect_uri;
        if self.carrier == Carrier::FormPost {
            let html = page::form_post(uri, &pairs);
            let mut response = super::html_response(StatusCode::OK, html);
            if let Ok(csp) = HeaderValue::from_str(&page::FORM_POST_CSP) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, csp);
            }
            set_cookies(&mut response, set);
            return response;
        }
        let mut encoded = form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            encoded.append_pair(name, value);
        }
        let separator = match self.carrier {
            Carrier::Fragment => '#',
            Carrier::Query | Carrier::FormPost if uri.contains('?') => '&',
            Carrier::Query | Carrier::FormPost => '?',
        };
        see_other(&format!("{uri}{separator}{}", encoded.finish()), set)
    }
}

/// Property tests (issue 26): OpenID Connect's `prompt`, `max_age` and `nonce`, any of them.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    use super::*;

    proptest! {
        #![proptest_config(Config { cases: 4000, failure_persistence: None, ..Config::default() })]

        /// Any parameters: no panic; an accepted request has a `max_age` of zero or more, and
        /// `prompt=none` alone if at all.
        #[test]
        fn prompts_are_read_totally(
            pairs in prop::collection::vec((
                prop::sample::select(vec!["prompt", "max_age", "nonce", "x"]),
                prop_oneof![
                    prop::sample::select(vec!["none", "login", "none login", "consent", "-1", "0", "+5", "9223372036854775808"])
                        .prop_map(str::to_owned),
                    "[ a-z0-9+-]{0,12}",
                    "n{500,520}",
                ],
            ), 0..5),
        ) {
            let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
            let Ok(form) = Form::parse(body.as_bytes()) else { return Ok(()) };
            if let Ok(prompt) = Prompt::parse(&form) {
                prop_assert!(prompt.max_age.is_none_or(|m| m >= 0));
                if prompt.none {
                    prop_assert_eq!(form.get("prompt").map(str::trim), Some("none"));
                }
                prop_assert!(form.get("nonce").is_none_or(|n| n.len() <= MAX_NONCE));
            }
        }
    }
}
