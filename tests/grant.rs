//! The grant engine against a real SQLite store in a temp dir: every grant, every error, the
//! store-backed single-use and rotation guarantees, and the back-off.

#![allow(clippy::unwrap_used)]

mod support;

#[path = "grant/harness.rs"]
mod harness;

#[path = "grant/cases.rs"]
mod cases;
