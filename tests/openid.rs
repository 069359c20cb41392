//! OpenID Connect over real TLS: discovery, ID tokens from the code flow and refresh,
//! UserInfo, the authorization request's OpenID parameters (`nonce`, `prompt`, `max_age`,
//! `login_hint`, `response_mode=form_post`), RP-initiated logout, CORS, and the rule that an
//! ID token never authenticates a proxied request. `tests/openid/discovery.rs` walks every
//! advertised value against the endpoints. (Third-party clients: tests/interop/.)
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

#[path = "oauth2/browser.rs"]
#[allow(dead_code)]
mod browser;

#[path = "openid/rp.rs"]
mod rp;

#[path = "openid/flows.rs"]
mod flows;

#[path = "openid/logout.rs"]
mod logout;

#[path = "openid/discovery.rs"]
mod discovery;
