//! TLS for the HTTPS listener: loading the certificate and key, or (only when the config says
//! `dev_self_signed = true`) generating a self-signed one for localhost on first start.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// Why the listener's certificate could not be loaded (at start, or on reload: then the old one
/// keeps serving).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error(
        "TLS certificate {path} is missing (set tls.cert, or tls.dev_self_signed = true for local development)"
    )]
    /// The certificate file does not exist and `dev_self_signed` is off.
    Missing {
        /// `tls.cert`.
        path: PathBuf,
    },
    /// A file could not be read or holds no valid PEM.
    #[error("cannot read {path}: {source}")]
    Pem {
        /// The certificate or key file.
        path: PathBuf,
        /// Why it could not be read or parsed.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{path} holds no certificate")]
    NoCertificate {
        /// `tls.cert`.
        path: PathBuf,
    },
    /// rustls refused the pair (the key does not match the certificate, an unsupported key type).
    #[error("the certificate and key are not usable together: {0}")]
    Rustls(#[from] rustls::Error),
    /// Generating the development certificate failed.
    #[error("cannot generate the development certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing the generated development certificate or key failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// Where the certificate or key was to be written.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

/// The certificate the listener presents, swappable while serving (a config reload): every
/// new handshake takes the current one; established connections keep theirs.
#[derive(Debug)]
pub struct CertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl CertResolver {
    /// Loads the certificate and key `config` names (generating a development certificate
    /// only when `dev_self_signed` says so).
    pub fn new(config: &TlsConfig) -> Result<Self, TlsError> {
        Ok(CertResolver {
            current: ArcSwap::from(Arc::new(load(config)?)),
        })
    }

    /// Presents `other`'s certificate from the next handshake on.
    pub fn replace_with(&self, other: CertResolver) {
        self.current.store(other.current.load_full());
    }
}

/// Builds the acceptor over `resolver`: HTTP/2 and HTTP/1.1 offered by ALPN, in that order of
/// preference; sessions resume by stateless tickets (see [`resumption`]).
pub fn acceptor(resolver: Arc<CertResolver>) -> Result<TlsAcceptor, TlsError> {
    let mut server = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Our order, not the client's: most clients (OpenSSL's among them) ask for AES-256 with
    // SHA-384 first, see `provider`.
    server.ignore_client_order = true;
    resumption(&mut server)?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// The default provider with the AES-128-GCM / SHA-256 suites first (TLS 1.3's mandatory
/// suite; the others stay, in their order, for clients without it). Every handshake and
/// resumption runs its key schedule on the suite's hash: SHA-256 has CPU instructions on
/// current x86 and ARM servers, SHA-384 (SHA-512's block function) has none, and aws-lc's
/// portable SHA-512 was ≈ 10 % of a resumed connection's CPU in a profile (`bench/tls.sh`).
fn provider() -> rustls::crypto::CryptoProvider {
    use rustls::CipherSuite;
    let mut provider = rustls::crypto::CryptoProvider::get_default()
        .map(|p| (**p).clone())
        .unwrap_or_else(rustls::crypto::aws_lc_rs::default_provider);
    let preferred = [
        CipherSuite::TLS13_AES_128_GCM_SHA256,
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ];
    provider
        .cipher_suites
        .sort_by_key(|suite| !preferred.contains(&suite.suite()));
    provider
}

/// TLS 1.3 resumption by stateless tickets, as nginx does by default. rustls' default is a
/// stateful cache of 256 sessions whose TLS 1.3 tickets are single-use: with two tickets per
/// handshake, 128 clients already evict each other's sessions and fall back to full
/// handshakes. The ticket key is random per process and rotates every 6 hours (rustls'
/// `Ticketer`); no early data is accepted, so a replayed ticket buys no replayed request.
fn resumption(server: &mut ServerConfig) -> Result<(), TlsError> {
    server.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()?;
    Ok(())
}

fn load(config: &TlsConfig) -> Result<CertifiedKey, TlsError> {
    if config.dev_self_signed {
        tracing::warn!(
            cert = %config.cert.display(),
            "DEVELOPMENT MODE: tls.dev_self_signed = true; serving a self-signed certificate. \
             Never use this setting in production: set tls.cert and tls.key to a real certificate"
        );
        if !config.cert.exists() || !config.key.exists() {
            generate_self_signed(&config.cert, &config.key)?;
        }
    }
    for path in [&config.cert, &config.key] {
        if !path.exists() {
            return Err(TlsError::Missing { path: path.clone() });
        }
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.cert)
        .and_then(|iter| iter.collect())
        .map_err(|source| pem_error(&config.cert, source))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: config.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&config.key)
        .map_err(|source| pem_error(&config.key, source))?;
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    Ok(CertifiedKey::from_der(certs, key, &provider)?)
}

fn pem_error(path: &Path, source: rustls::pki_types::pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        source,
    }
}

fn generate_self_signed(cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)?;
    write_file(cert_path, certified.cert.pem().as_bytes(), 0o644)?;
    write_file(
        key_path,
        certified.signing_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    tracing::warn!(cert = %cert_path.display(), key = %key_path.display(), "generated a self-signed development certificate for localhost");
    Ok(())
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)?;
        file.write_all(contents)
    };
    write().map_err(|source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    })
}
