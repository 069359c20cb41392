//! Outbound HTTP: pooled hyper clients (HTTP/1.1 and HTTP/2 over plain TCP or rustls) and
//! their trust roots (the system's, or a CA file's). The proxy's upstreams
//! (`proxy/upstream.rs`) and external issuers' JWKS fetches (`authn/jwks.rs`) use them.

use std::path::{Path, PathBuf};

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::config::UpstreamConfig;
use crate::http::Body;

/// The pooled client for every outbound request (upstreams and JWKS): HTTP/1.1 and HTTP/2,
/// plain or rustls, with the gateway's [`Body`].
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Body>;

/// Why an outbound client's trust roots cannot be set up (at start-up or reload).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamSetupError {
    /// The CA file is missing, unreadable or not PEM.
    #[error("cannot read the CA file {path}: {source}")]
    CaFile {
        /// The configured `ca_file`.
        path: PathBuf,
        /// The read or PEM failure.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The CA file parses, but no certificate in it is usable as a trust anchor.
    #[error("the CA file {path} holds no usable certificate")]
    NoCertificate {
        /// The configured `ca_file`.
        path: PathBuf,
    },
}

/// A client with `config`'s timeouts and pool limits, trusting what `tls` trusts; `h2c`:
/// HTTP/2 only, with prior knowledge (the routes that set `h2c` are plain-HTTP ones). Redirects
/// are never followed.
pub fn build(config: &UpstreamConfig, tls: rustls::ClientConfig, h2c: bool) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(config.connect_timeout));
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(config.pool_idle_timeout)
        .pool_max_idle_per_host(config.pool_max_idle_per_host)
        .http2_only(h2c)
        .build(connector)
}

/// A TLS client configuration trusting exactly `roots`, without client certificates.
pub fn tls_config(roots: RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The system's trust roots; certificates that do not load are logged and skipped (none at
/// all is a warning, not an error: plain-HTTP upstreams need none).
pub fn native_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "could not load some system CA certificates");
    }
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!("no system CA certificates found: https upstreams need a ca_file");
    }
    roots
}

/// The trust roots in a PEM file (a private CA): at least one usable certificate.
pub fn load_roots(path: &Path) -> Result<RootCertStore, UpstreamSetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|source| UpstreamSetupError::CaFile {
            path: path.to_path_buf(),
            source,
        })?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(UpstreamSetupError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(roots)
}
