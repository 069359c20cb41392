//! Hardening for legacy upstreams behind the gateway: path readings (case, `;params`, trailing
//! dots and spaces, double encoding, extensions) and the shapes refused outright; headers that
//! frameworks read as routing, address, method or identity; protocol upgrades; tokens in the
//! query, Host, TRACE, HEAD over HTTP/2, transfer codings, malformed chunked bodies and early
//! refusals of HTTP/2 uploads. Every case checks what the upstream did and did not receive.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "legacy/harness.rs"]
#[allow(dead_code)]
mod harness;

#[path = "legacy/h2raw.rs"]
mod h2raw;

#[path = "legacy/paths.rs"]
mod paths;

#[path = "legacy/headers.rs"]
mod headers;

#[path = "legacy/upgrades.rs"]
mod upgrades;

#[path = "legacy/smaller.rs"]
mod smaller;
