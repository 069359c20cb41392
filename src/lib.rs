//! authgate: a reverse-proxy authentication gateway. See ARCHITECTURE.md for the map.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod authn;
pub mod authz;
pub mod config;
pub mod dialects;
pub mod grant;
pub mod http;
pub mod keyring;
pub mod metrics;
pub mod net;
pub mod outbound;
pub mod providers;
pub mod proxy;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod tokens;

/// rustls needs one process-wide crypto provider; only aws-lc-rs is compiled in.
pub fn install_crypto_provider() {
    // Err means one is installed already, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
