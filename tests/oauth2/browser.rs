//! A browser's HTTP, just enough for the login pages: a cookie jar, the forms as served,
//! redirects taken apart. Shared by tests/login.rs and tests/openid.rs.

use std::collections::HashMap;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use crate::harness::*;
use crate::support::{Resp, send};

pub const AUTHORIZE: &str = "/open/authorize/index";

/// A browser's cookie jar, just enough for these pages.
#[derive(Default)]
pub struct Browser {
    pub cookies: HashMap<String, String>,
}

impl Browser {
    pub async fn get(&mut self, s: &Setup, path_and_query: &str) -> Resp {
        let mut request = Request::get(s.gw.url(path_and_query));
        if let Some(cookie) = self.header() {
            request = request.header("cookie", cookie);
        }
        let r = send(
            &s.gw.client(false),
            request.body(Full::new(Bytes::new())).unwrap(),
        )
        .await;
        self.remember(&r);
        r
    }

    pub async fn post(&mut self, s: &Setup, path: &str, params: &[(&str, &str)]) -> Resp {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            body.append_pair(k, v);
        }
        let mut request = Request::post(s.gw.url(path))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(cookie) = self.header() {
            request = request.header("cookie", cookie);
        }
        let request = request.body(Full::new(Bytes::from(body.finish()))).unwrap();
        let r = send(&s.gw.client(false), request).await;
        self.remember(&r);
        r
    }

    pub fn header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    pub fn remember(&mut self, r: &Resp) {
        for value in r.headers.get_all("set-cookie") {
            let text = value.to_str().unwrap();
            assert!(
                text.contains("Secure") && text.contains("HttpOnly"),
                "{text}"
            );
            // The CSRF cookie is scoped to the pages; the session is host-only for the site
            // (session routes read it; the proxy never forwards it).
            if text.starts_with("__Host-") {
                assert!(
                    text.contains("Path=/;") && !text.contains("Domain"),
                    "{text}"
                );
            } else if text.starts_with("__Secure-") {
                // Shared across subdomains (`[forward_auth] cookie_domain`).
                assert!(
                    text.contains("Path=/;") && text.contains("Domain="),
                    "{text}"
                );
            } else {
                assert!(text.contains("Path=/open;"), "scoped to the pages: {text}");
            }
            let (pair, _) = text.split_once(';').unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub fn csrf(&self) -> String {
        self.cookies
            .get("authgate_csrf")
            .cloned()
            .expect("a CSRF cookie")
    }

    /// Opens `url` (a login page), fills in the form as served, and submits it.
    pub async fn login(&mut self, s: &Setup, url: &str, user: &str, password: &str) -> Resp {
        let page = self.get(s, url).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let html = page.text();
        let path = url.split('?').next().unwrap();
        let mut fields = hidden_fields(&html);
        fields.push(("username".into(), user.into()));
        fields.push(("password".into(), password.into()));
        fields.push(("action".into(), "login".into()));
        let params: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.post(s, path, &params).await
    }
}

/// `<input type="hidden" name="…" value="…">` pairs, unescaped.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in html.split("<input type=\"hidden\" ").skip(1) {
        let name = between(chunk, "name=\"", "\"");
        let value = between(chunk, "value=\"", "\"");
        out.push((unescape(&name), unescape(&value)));
    }
    out
}

pub fn between(text: &str, start: &str, end: &str) -> String {
    let from = text.find(start).unwrap() + start.len();
    let to = from + text[from..].find(end).unwrap();
    text[from..to].to_owned()
}

pub fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The parameters of a redirect's query (or fragment).
pub fn redirect_params(r: &Resp, fragment: bool) -> HashMap<String, String> {
    assert_eq!(r.status, 303, "{}", r.text());
    let location = r.header("location").expect("a redirect");
    assert!(location.starts_with(REDIRECT), "{location}");
    let (_, rest) = location
        .split_once(if fragment { '#' } else { '?' })
        .unwrap_or((location, ""));
    form_urlencoded::parse(rest.as_bytes())
        .into_owned()
        .collect()
}

pub fn authorize_url(client: &str, extra: &str) -> String {
    let redirect: String = form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect();
    format!(
        "{AUTHORIZE}?response_type=code&client_id={client}&redirect_uri={redirect}&state=st%20ate{extra}"
    )
}
