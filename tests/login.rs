//! The browser flows over real TLS, as a browser's HTTP sees them: the login page, its form,
//! cookies and redirects. (The same flows in a real Chromium: tests/browser/.)
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

#[path = "oauth2/browser.rs"]
mod browser;

#[path = "login/cases.rs"]
mod cases;
