//! The sign-in page of session routes (`paths.signin`, default `/open/signin`): a browser
//! that reached a session route without a session is sent here with `rd`, the page to return
//! to. A live session goes straight back; otherwise the login form, and after a good login a
//! new session (the previous one ends: rotation) and its cookie, then back.
//!
//! The way back is never an open redirect: `rd` is a path on this host, or an `https` URL on
//! the page's own host or a host a route serves; anything else is an error page.

use std::net::IpAddr;

use hyper::{Response, StatusCode};

use super::{
    CSRF_ADVICE, Cookies, LoginPages, Refused, SetCookies, csrf_ok, error_page, internal, page,
    random_failed, see_other,
};
use crate::config::HostMatch;
use crate::dialects::form::Form;
use crate::http::Body;

/// Where the sign-in page was asked for.
pub(super) struct At<'a> {
    /// The page's own path (the form posts back to it).
    pub path: &'a str,
    /// The host the browser addressed, lower case, with its port if it named one.
    pub host: Option<String>,
    /// The client address (the login back-off counts by it).
    pub source: IpAddr,
}

impl LoginPages {
    /// GET: back at once with a live session (unless `prompt=login`: a route wants a fresher
    /// sign-in), else the form. POST: the form's login, then back.
    pub(super) async fn signin(
        &self,
        at: &At<'_>,
        post: bool,
        params: &Form,
        cookies: &Cookies,
    ) -> Response<Body> {
        let rd = params.get("rd").unwrap_or("/");
        let Some(back) = return_target(rd, at.host.as_deref(), &self.route_hosts) else {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid return address",
                "The page to return to after signing in is not on this site.",
            );
        };
        let again = params.get("prompt") == Some("login");
        if !post {
            if let Some(token) = cookies.session.as_ref().filter(|_| !again) {
                match self.session(token).await {
                    Ok(Some(_)) => return see_other(back, SetCookies::default()),
                    Ok(None) => {}
                    Err(error) => return internal(&error),
                }
            }
            let mut set = SetCookies::default();
            return match self.csrf(cookies, &mut set) {
                Ok(csrf) => self.signin_form(at, params, &csrf, None, StatusCode::OK, set),
                Err(error) => random_failed(&error),
            };
        }
        if !csrf_ok(params, cookies) {
            return error_page(StatusCode::FORBIDDEN, "This form has expired", CSRF_ADVICE);
        }
        if params.get("action") == Some("cancel") {
            let html = page::notice("Not signed in", "You did not sign in.", None);
            return self.html(StatusCode::OK, html, SetCookies::default());
        }
        match self.check_password(params, at.source).await {
            Ok(user) => match self.rotate(&user, cookies).await {
                Ok(cookie) => see_other(back, SetCookies(vec![cookie])),
                Err(error) => internal(&error),
            },
            Err(Refused::Again(again)) => {
                let csrf = cookies.csrf.clone().unwrap_or_default();
                let message = Some(again.message.as_str());
                let set = SetCookies::default();
                let response = self.signin_form(at, params, &csrf, message, again.status, set);
                again.retry(response)
            }
            Err(Refused::Internal(error)) => internal(&error),
        }
    }

    fn signin_form(
        &self,
        at: &At<'_>,
        params: &Form,
        csrf: &str,
        error: Option<&str>,
        status: StatusCode,
        set: SetCookies,
    ) -> Response<Body> {
        let hidden: Vec<(&str, String)> = ["rd", "prompt"]
            .into_iter()
            .filter_map(|name| params.get(name).map(|v| (name, v.to_owned())))
            .collect();
        let site = at.host.as_deref().unwrap_or("this site");
        let providers = self.provider_buttons(at.path, &hidden);
        let html = page::login(&page::LoginForm {
            action: at.path,
            client_name: site,
            hidden: &hidden,
            csrf,
            username: params.get("username").unwrap_or_default(),
            error,
            providers: &providers,
            password: self.login.password_form,
        });
        self.html(status, html, set)
    }
}

/// `rd` when it is a way back this gateway may send a browser: a path on this host (`/…`, not
/// `//…`, no backslash, no control character or space), or an `https` URL without user info
/// on the page's own host or on a host a route serves.
fn return_target<'r>(rd: &'r str, host: Option<&str>, routes: &[HostMatch]) -> Option<&'r str> {
    if rd
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
    {
        return None;
    }
    if rd.starts_with('/') {
        return (!rd.starts_with("//")).then_some(rd);
    }
    let uri = rd.parse::<hyper::Uri>().ok()?;
    let authority = uri.authority()?;
    if uri.scheme_str() != Some("https") || authority.as_str().contains('@') {
        return None;
    }
    let bare = |a: &str| a.strip_suffix(":443").unwrap_or(a).to_ascii_lowercase();
    let named = bare(authority.as_str());
    let name = authority.host().to_ascii_lowercase();
    let served = host.is_some_and(|h| bare(h) == named) || routes.iter().any(|r| r.matches(&name));
    served.then_some(rd)
}

#[cfg(test)]
mod tests {
    use super::return_target;
    use crate::config::HostMatch;

    #[test]
    fn only_ways_back_to_hosts_we_serve() {
        let routes = [
            HostMatch::Exact("admin.example".into()),
            HostMatch::Suffix(".apps.example".into()),
        ];
        let host = Some("gw.example");
        let ok = |rd| return_target(rd, host, &routes) == Some(rd);
        assert!(ok("/"));
        assert!(ok("/panel/?a=1&b=%2F"));
        assert!(ok("https://gw.example/x"));
        assert!(ok("https://GW.example/x"));
        assert!(ok("https://gw.example:443/x"));
        assert!(ok("https://admin.example/"));
        assert!(ok("https://crm.apps.example/list"));
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "http://gw.example/",
            "https://gw.example@evil.example/",
            "https://apps.example/",
            "javascript:alert(1)",
            "evil.example",
            "/a b",
            "/a\r\nSet-Cookie: x=1",
        ] {
            assert_eq!(return_target(bad, host, &routes), None, "{bad}");
        }
        assert_eq!(
            return_target("https://gw.example:8443/", Some("gw.example:8443"), &[]),
            Some("https://gw.example:8443/")
        );
        assert_eq!(return_target("https://gw.example:8443/", host, &[]), None);
    }
}

/// Property tests (issue 26): `rd`, the way back after sign-in, is client text.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    use super::return_target;
    use crate::config::HostMatch;

    /// `rd` values built from the pieces of open redirects, and anything at all.
    fn rd() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "/",
            "//",
            "\\",
            "https:",
            "http:",
            "https://",
            "gw.example",
            "GW.EXAMPLE",
            ":443",
            ":8443",
            "@",
            "evil.example",
            "admin.example",
            "x.apps.example",
            ".apps.example",
            "apps.example",
            "%2F",
            "%5C",
            "?",
            "#",
            " ",
            "\t",
            "\r\n",
            ".",
            "..",
            ";",
            "\u{ff0f}",
            "javascript:",
            "[::1]",
            "%40",
        ]);
        prop_oneof![
            prop::collection::vec(piece, 0..7).prop_map(|p| p.concat()),
            any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(Config { cases: 4000, failure_persistence: None, ..Config::default() })]

        /// A way back is `rd` itself, with nothing a browser could read as another host: a path
        /// (`/`, not `//`), or `https` on the page's host or a host a route serves, without
        /// user info; never a control character, space or backslash.
        #[test]
        fn ways_back_stay_on_hosts_we_serve(rd in rd()) {
            let routes = [
                HostMatch::Exact("admin.example".into()),
                HostMatch::Suffix(".apps.example".into()),
            ];
            let Some(target) = return_target(&rd, Some("gw.example"), &routes) else {
                return Ok(());
            };
            prop_assert_eq!(target, rd.as_str());
            prop_assert!(!target.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'\\'));
            if target.starts_with('/') {
                prop_assert!(!target.starts_with("//"), "{:?}", target);
                return Ok(());
            }
            let uri: hyper::Uri = target.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert_eq!(uri.scheme_str(), Some("https"));
            let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
            prop_assert!(!authority.contains('@'), "{:?}", target);
            let host = uri.host().unwrap_or_default().to_ascii_lowercase();
            let served = host == "gw.example" || host == "admin.example" || (host.ends_with(".apps.example") && host.len() > ".apps.example".len());
            prop_assert!(served, "{:?}", target);
            prop_assert!(target.to_ascii_lowercase().starts_with(&format!("https://{host}")), "{:?}", target);
        }
    }
}
