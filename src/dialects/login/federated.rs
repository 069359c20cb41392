//! Sign-in at an upstream OpenID Connect provider from the login pages (issue 25).
//!
//! `GET /open/providers/<name>/start?return_to=<login page>` stores a pending sign-in (state,
//! nonce, PKCE verifier, the page to continue with), bound to this browser by the
//! `__Host-authgate-pending` cookie (`SameSite=Lax`: a `Strict` cookie would not come back on
//! the provider's top-level redirect), and sends the browser to the provider.
//! `GET /open/providers/<name>/callback` takes that sign-in once (a replayed callback finds
//! nothing), checks the browser binding and the RFC 9207 `iss`, redeems the code, verifies
//! the ID token, finds or links or provisions the local user, starts a session and sends the
//! browser back to the login page, where the original flow completes with that session: the
//! provider is only how the person proved who they are.
//!
//! Refusals are pages, never redirects, and never sign anybody in; each is logged (target
//! `authgate::login`) with why.

use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::{Response, StatusCode};

use super::{
    Cookies, LoginPages, SetCookies, error_page, internal, page, random_failed, random_token,
    see_other,
};
use crate::dialects::form::Form;
use crate::grant::Unwelcome;
use crate::http::Body;
use crate::providers::{AuthorizationRequest, Provider, ProviderError};
use crate::store::PendingLogin;

/// Where the provider pages live: `<PREFIX><name>/start` and `<PREFIX><name>/callback`.
pub const PREFIX: &str = "/open/providers/";
/// The cookie binding a pending sign-in to the browser that started it.
pub const PENDING_COOKIE: &str = "__Host-authgate-pending";
/// How long a person may take at the provider.
const PENDING_TTL: Duration = Duration::from_secs(600);

/// Which provider page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Off to the provider.
    Start,
    /// Back from it.
    Callback,
}

impl LoginPages {
    /// The login page's buttons: one per provider, each carrying the page (path and the
    /// request's parameters) to continue with.
    pub(super) fn provider_buttons(
        &self,
        path: &str,
        carried: &[(&str, String)],
    ) -> Vec<(String, String)> {
        if self.providers.is_empty() {
            return Vec::new();
        }
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in carried {
            query.append_pair(name, value);
        }
        let query = query.finish();
        let return_to = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        let encoded: String = form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
        self.providers
            .all()
            .iter()
            .map(|p| {
                let c = p.config();
                (
                    format!("{PREFIX}{}/start?return_to={encoded}", c.name),
                    c.label.clone(),
                )
            })
            .collect()
    }

    /// `/open/providers/<name>/start` or `/callback`.
    pub(super) async fn provider_page(
        &self,
        name: &str,
        step: Step,
        params: &Form,
        cookies: &Cookies,
        source: std::net::IpAddr,
    ) -> Response<Body> {
        let Some(provider) = self.providers.get(name) else {
            return error_page(
                StatusCode::NOT_FOUND,
                "Unknown sign-in",
                "No identity provider of that name is configured here.",
            );
        };
        match step {
            Step::Start => self.provider_start(provider, params, cookies).await,
            Step::Callback => {
                self.provider_callback(provider, params, cookies, source)
                    .await
            }
        }
    }

    async fn provider_start(
        &self,
        provider: &Provider,
        params: &Form,
        cookies: &Cookies,
    ) -> Response<Body> {
        let label = &provider.config().label;
        let Some(return_to) = params
            .get("return_to")
            .filter(|target| self.is_login_page(target))
        else {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid sign-in link",
                "A sign-in starts from the login page: go back to the application and start again.",
            );
        };
        let discovery = match provider.fresh_discovery().await {
            Ok(discovery) => discovery,
            Err(error) => return self.provider_down(provider, &error, return_to),
        };
        let binding = match cookies.pending.clone().filter(|v| v.len() == 43) {
            Some(binding) => binding,
            None => match random_token() {
                Ok(binding) => binding,
                Err(error) => return random_failed(&error),
            },
        };
        let (nonce, verifier) = match (random_token(), random_token()) {
            (Ok(nonce), Ok(verifier)) => (nonce, verifier),
            (Err(error), _) | (_, Err(error)) => return random_failed(&error),
        };
        let pending = PendingLogin {
            provider: provider.config().name.clone(),
            nonce,
            verifier,
            return_to: return_to.to_owned(),
        };
        let state = match self
            .engine
            .begin_federated(&pending, &binding, PENDING_TTL)
            .await
        {
            Ok(state) => state,
            Err(error) => return internal(&error),
        };
        let challenge = URL_SAFE_NO_PAD.encode(digest(&SHA256, pending.verifier.as_bytes()));
        let redirect_uri = self.callback_uri(&provider.config().name);
        let location = provider.authorization_url(
            &discovery,
            &AuthorizationRequest {
                redirect_uri: &redirect_uri,
                state: &state,
                nonce: &pending.nonce,
                challenge: &challenge,
            },
        );
        tracing::info!(target: "authgate::login", provider = %provider.config().name, "sign-in sent to {label}");
        let cookie = format!(
            "{PENDING_COOKIE}={binding}; Path=/; Max-Age={}; Secure; HttpOnly; SameSite=Lax",
            PENDING_TTL.as_secs()
        );
        see_other(&location, SetCookies(vec![cookie]))
    }

    async fn provider_callback(
        &self,
        provider: &Provider,
        params: &Form,
        cookies: &Cookies,
        source: std::net::IpAddr,
    ) -> Response<Body> {
        let config = provider.config();
        let name = config.name.as_str();
        let label = config.label.as_str();
        let expired = |why: &str| {
            tracing::warn!(target: "authgate::login", provider = name, %source, "provider callback refused: {why}");
            error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in has expired or was already used",
                "Go back to the application and sign in again.",
            )
        };
        let Some(state) = params.get("state") else {
            return expired("no state");
        };
        let Some(binding) = cookies.pending.as_deref() else {
            return expired("no pending-sign-in cookie (another browser, or cookies off)");
        };
        let taken = match self.engine.take_federated(state, binding).await {
            Ok(Some(taken)) => taken,
            Ok(None) => return expired("unknown, expired or used state, or another browser's"),
            Err(error) => return internal(&error),
        };
        if taken.provider != name {
            return expired("the state was issued for another provider");
        }
        let return_to = taken.return_to.as_str();
        if let Some(error) = params.get("error") {
            tracing::warn!(target: "authgate::login", provider = name, %source, error, "the provider did not sign the person in");
            return self.provider_said_no(label, error, params.get("error_description"), return_to);
        }
        let failed = |why: &dyn std::fmt::Display| {
            tracing::warn!(target: "authgate::login", provider = name, %source, "provider sign-in failed: {why}");
            self.back_page(
                StatusCode::BAD_REQUEST,
                &format!("Sign-in with {label} failed"),
                &format!("The answer from {label} could not be verified, so nobody was signed in. Try again."),
                return_to,
            )
        };
        let discovery = match provider.discovery().await {
            Ok(discovery) => discovery,
            Err(error) => return self.provider_down(provider, &error, return_to),
        };
        // RFC 9207: an `iss` must be the issuer; a provider that announces it must send it.
        match params.get("iss") {
            Some(iss) if iss != config.issuer => {
                return failed(&"the iss parameter is not the issuer");
            }
            None if discovery.iss_parameter => return failed(&"the iss parameter is missing"),
            _ => {}
        }
        let Some(code) = params.get("code") else {
            return failed(&"no code");
        };
        let redirect_uri = self.callback_uri(name);
        let identity = match provider
            .redeem(
                &discovery,
                code,
                &taken.verifier,
                &redirect_uri,
                &taken.nonce,
            )
            .await
        {
            Ok(identity) => identity,
            Err(error) if error.is_unreachable() => {
                return self.provider_down(provider, &error, return_to);
            }
            Err(error) => return failed(&error),
        };
        let user = match self.engine.federated_user(config, &identity, source).await {
            Ok(user) => user,
            Err(Unwelcome::Internal(error)) => return internal(&error),
            Err(refusal) => return self.unwelcome(label, &refusal, name, source, return_to),
        };
        let ttl = self.login.session_ttl.min(config.max_session);
        match self.rotate_for(&user, cookies, ttl).await {
            Ok(cookie) => {
                tracing::info!(target: "authgate::login", provider = name, user = user.id, "signed in through {label}");
                see_other(&fresh(return_to), SetCookies(vec![cookie]))
            }
            Err(error) => internal(&error),
        }
    }

    /// The callback URL registered at the provider.
    fn callback_uri(&self, name: &str) -> String {
        let issuer = self.engine.config().issuer.trim_end_matches('/');
        format!("{issuer}{PREFIX}{name}/callback")
    }

    /// `target` names one of the login pages (path, then nothing or a query).
    fn is_login_page(&self, target: &str) -> bool {
        let path = target.split_once('?').map_or(target, |(path, _)| path);
        !target.bytes().any(|b| b.is_ascii_control() || b == b'\\')
            && self.page_paths.iter().any(|page| page == path)
    }

    fn provider_down(
        &self,
        provider: &Provider,
        error: &ProviderError,
        return_to: &str,
    ) -> Response<Body> {
        let label = &provider.config().label;
        tracing::warn!(target: "authgate::login", provider = %provider.config().name, %error, "identity provider unavailable");
        let status = if error.is_unreachable() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_GATEWAY
        };
        self.back_page(
            status,
            &format!("{label} is not reachable right now"),
            &format!("Signing in with {label} does not work at the moment."),
            return_to,
        )
    }

    fn provider_said_no(
        &self,
        label: &str,
        error: &str,
        description: Option<&str>,
        return_to: &str,
    ) -> Response<Body> {
        let words = match error {
            "access_denied" => "access was denied (you declined, or the provider refused you)",
            "login_required" | "interaction_required" => "you need to sign in there first",
            "temporarily_unavailable" => "it is temporarily unavailable",
            "server_error" => "it had an internal error",
            _ => "it refused the request",
        };
        let mut message = format!("{label} did not sign you in: {words} ({error}).");
        if let Some(description) = description.filter(|d| d.len() <= 300) {
            message = format!("{message} It said: “{description}”");
        }
        self.back_page(
            StatusCode::BAD_REQUEST,
            &format!("{label} did not sign you in"),
            &message,
            return_to,
        )
    }

    fn unwelcome(
        &self,
        label: &str,
        refusal: &Unwelcome,
        name: &str,
        source: std::net::IpAddr,
        return_to: &str,
    ) -> Response<Body> {
        tracing::warn!(target: "authgate::login", provider = name, %source, %refusal, "provider sign-in refused");
        let (title, message) = match refusal {
            Unwelcome::Disabled => (
                "This account is disabled".to_owned(),
                "Your account here is disabled. Ask an administrator.".to_owned(),
            ),
            Unwelcome::NotAllowed(_) => (
                format!("Your {label} account is not allowed to sign in here"),
                "Ask an administrator if you need access.".to_owned(),
            ),
            Unwelcome::AccountTaken(account) => (
                "No account here is linked to you".to_owned(),
                format!(
                    "An account named “{account}” exists already and is not linked to your {label} identity. Ask an administrator to link it."
                ),
            ),
            _ => (
                "No account here is linked to you".to_owned(),
                format!(
                    "No account here is linked to your {label} identity. Ask an administrator."
                ),
            ),
        };
        self.back_page(StatusCode::FORBIDDEN, &title, &message, return_to)
    }

    /// An error page with a way back to the login page (its password form, other buttons).
    fn back_page(
        &self,
        status: StatusCode,
        title: &str,
        message: &str,
        return_to: &str,
    ) -> Response<Body> {
        let password = if self.login.password_form {
            "Sign in with your password"
        } else {
            "Back to the sign-in page"
        };
        let html = page::back(title, message, return_to, password);
        self.html(status, html, SetCookies::default())
    }
}

/// The login page to continue with, minus what asked for a fresh sign-in (`prompt=login`,
/// `max_age`): the person has just signed in.
fn fresh(return_to: &str) -> String {
    let Some((path, query)) = return_to.split_once('?') else {
        return return_to.to_owned();
    };
    let mut kept = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "max_age" => {}
            "prompt" => {
                let rest: Vec<&str> = value.split_whitespace().filter(|v| *v != "login").collect();
                if !rest.is_empty() {
                    kept.append_pair("prompt", &rest.join(" "));
                }
            }
            _ => {
                kept.append_pair(&name, &value);
            }
        }
    }
    format!("{path}?{}", kept.finish())
}

#[cfg(test)]
mod tests {
    use super::fresh;

    #[test]
    fn a_fresh_sign_in_drops_prompt_login_and_max_age() {
        assert_eq!(fresh("/open/signin"), "/open/signin");
        assert_eq!(
            fresh("/open/authorize/index?client_id=a&prompt=login+consent&max_age=0&state=x"),
            "/open/authorize/index?client_id=a&prompt=consent&state=x"
        );
        assert_eq!(
            fresh("/open/signin?rd=%2Fweb&prompt=login"),
            "/open/signin?rd=%2Fweb"
        );
    }
}
