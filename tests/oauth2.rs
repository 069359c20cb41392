//! The `oauth2` dialect over real TLS: every endpoint of seed 003 plus `/oauth2/token`,
//! revocation (RFC 7009), introspection (RFC 7662) and metadata (RFC 8414); RFC 6749 §5.1/§5.2
//! answers; the single-use and rotation guarantees seen from a client; the back-off.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)] // shared with tests/login.rs
mod harness;

#[path = "oauth2/grants.rs"]
mod grants;

#[path = "oauth2/lifecycle.rs"]
mod lifecycle;

#[path = "oauth2/refusals.rs"]
mod refusals;
