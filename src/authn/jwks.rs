//! External issuers' keys: a JWKS fetched over HTTPS (or read from a file), installed into the
//! shared [`KeySet`] under that issuer only. Refreshed in the background before it goes stale,
//! and on demand when a token names an unknown `kid` — single-flight, at most once per
//! `refresh_min_interval`, with a short negative cache, so a flood of random kids cannot hammer
//! the IdP. A failed or garbage answer never replaces good keys; the last good set serves for
//! at most `stale_max`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header;
use tokio::sync::{Mutex, watch};

mod document;

pub use document::parse_jwks;
use document::{key_from_pem, max_age};

use super::keyset::{KeyError, KeySet, VerifyingKey};
use crate::config::{IssuerConfig, KeySource, UpstreamConfig};
use crate::http::BoxError;
use crate::outbound::{self, HttpClient, UpstreamSetupError};

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 256 << 10;
/// Bound on remembered unknown kids (a flood of random kids must not grow memory).
const MAX_UNKNOWN_KIDS: usize = 10_000;

/// Why an external issuer's keys could not be (re)loaded. Only logged and counted, never
/// shown to a client: the previous keys stay in place. Each message carries its source's
/// text too, because the log line is all an operator sees.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// No answer from the JWKS endpoint (DNS, connect, TLS, HTTP protocol).
    #[error("fetching the JWKS from {uri} failed: {source}")]
    Fetch {
        /// The configured `jwks_uri`.
        uri: hyper::Uri,
        /// What the HTTP client reported (boxed: it is large, and the error is rare).
        #[source]
        source: Box<hyper_util::client::legacy::Error>,
    },
    /// The GET request could not be built from the configured URI.
    #[error("cannot request the JWKS from {uri}: {source}")]
    Request {
        /// The configured `jwks_uri`.
        uri: hyper::Uri,
        /// Why `http` refused the request.
        #[source]
        source: hyper::http::Error,
    },
    /// A `jwks_file` or `public_key_file` could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The configured file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The endpoint answered, but not 2xx (redirects are not followed).
    #[error("the JWKS endpoint answered {0}")]
    Status(u16),
    /// No complete answer within the issuer's `fetch_timeout`.
    #[error("fetching the JWKS took longer than {0:?}")]
    Timeout(Duration),
    /// The answer's body broke off or exceeded the size limit.
    #[error("the JWKS body could not be read: {0}")]
    Body(#[source] BoxError),
    /// The document is not JSON with a `keys` array.
    #[error("the JWKS is not valid: {0}")]
    Invalid(#[source] serde_json::Error),
    /// A `public_key_file` issuer names zero or several algorithms: the key cannot be bound.
    #[error("a public_key_file issuer must name exactly one algorithm")]
    AmbiguousAlgorithm,
    /// A `public_key_file` issuer configured with an HMAC algorithm.
    #[error("the public key file is not valid: HMAC is not accepted")]
    Hmac,
    /// The PEM does not hold a public key of the configured algorithm's family.
    #[error("the public key file is not valid: {0}")]
    Pem(#[source] jsonwebtoken::errors::Error),
    /// The key parsed, but cannot be bound to the configured algorithm.
    #[error("the public key file is not valid: {0}")]
    Key(#[source] KeyError),
    /// Every key in the document was skipped.
    #[error("the JWKS holds no usable key for the configured algorithms")]
    NoKeys,
    /// The issuer's CA file cannot be used (at start-up).
    #[error("cannot set up the JWKS client: {0}")]
    Setup(#[source] UpstreamSetupError),
    /// A `jwks_uri` source without its HTTP client: a construction bug, reported not panicked.
    #[error("cannot set up the JWKS client: no HTTP client")]
    NoClient,
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_success: Option<Instant>,
}

/// One external issuer's key source and its refresh state. Owns that issuer's entries in the
/// shared [`KeySet`] (no other issuer's keys are touched); all fetches go through one lock, so
/// at most one is in flight per issuer.
pub struct JwksSource {
    config: IssuerConfig,
    client: Option<HttpClient>,
    keys: Arc<KeySet>,
    state: Mutex<FetchState>,
    unknown_kids: DashMap<String, Instant>,
    stats: super::KeySetCounters,
}

impl JwksSource {
    /// A source for `config`, with its own HTTP client (trusting the issuer's CA file, or the
    /// system roots) when the keys come from a `jwks_uri`. Loads nothing yet.
    pub fn new(
        config: IssuerConfig,
        upstream: &UpstreamConfig,
        keys: Arc<KeySet>,
    ) -> Result<Self, JwksError> {
        let client = match &config.source {
            KeySource::JwksUri { ca_file, .. } => {
                let roots = match ca_file {
                    Some(path) => outbound::load_roots(path).map_err(JwksError::Setup)?,
                    None => outbound::native_roots(),
                };
                Some(outbound::build(
                    upstream,
                    outbound::tls_config(roots),
                    false,
                ))
            }
            _ => None,
        };
        Ok(JwksSource {
            config,
            client,
            keys,
            state: Mutex::new(FetchState::default()),
            unknown_kids: DashMap::new(),
            stats: super::KeySetCounters::default(),
        })
    }

    /// Refreshes, failures and the time of the last good key set, for `/metrics`.
    pub fn stats(&self) -> super::KeySetStats {
        self.stats.snapshot()
    }

    /// The `iss` value whose keys this source owns.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Fetches and installs the key set now. Returns how long it may be used.
    pub async fn load(&self) -> Result<Duration, JwksError> {
        let mut state = self.state.lock().await;
        self.load_locked(&mut state).await
    }

    async fn load_locked(&self, state: &mut FetchState) -> Result<Duration, JwksError> {
        state.last_attempt = Some(Instant::now());
        let (keys, max_age) = match self.fetch().await {
            Ok(fetched) => fetched,
            Err(error) => {
                self.stats.failed();
                return Err(error);
            }
        };
        self.keys.replace_issuer(&self.config.issuer, keys);
        self.stats.succeeded();
        self.unknown_kids.clear();
        state.last_success = Some(Instant::now());
        Ok(max_age
            .unwrap_or(self.config.cache_min)
            .clamp(self.config.cache_min, self.config.cache_max))
    }

    /// Called when a token names `kid`, unknown for this issuer. True when the key is known
    /// after this call (fetched by us or by a concurrent caller).
    pub async fn refresh_for_kid(&self, kid: &str) -> bool {
        if self
            .unknown_kids
            .get(kid)
            .is_some_and(|until| *until > Instant::now())
        {
            return false;
        }
        let mut state = self.state.lock().await;
        if self.keys.get(&self.config.issuer, kid).is_some() {
            return true;
        }
        let recently = state
            .last_attempt
            .is_some_and(|at| at.elapsed() < self.config.refresh_min_interval);
        if !recently && let Err(error) = self.load_locked(&mut state).await {
            tracing::warn!(issuer = %self.config.issuer, %error, "JWKS refresh for an unknown kid failed; keeping the previous keys");
        }
        if self.keys.get(&self.config.issuer, kid).is_some() {
            return true;
        }
        if self.unknown_kids.len() >= MAX_UNKNOWN_KIDS {
            self.unknown_kids.clear();
        }
        self.unknown_kids.insert(
            kid.to_owned(),
            Instant::now() + self.config.refresh_min_interval,
        );
        false
    }

    /// Keeps the keys fresh until `stop`: refreshes at 80% of the cache lifetime; on failure
    /// retries every `refresh_min_interval` and drops the keys once they are `stale_max` old.
    pub async fn run_background(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        if self.client.is_none() {
            return;
        }
        let mut wait = self.config.cache_min.mul_f64(0.8);
        loop {
            tokio::select! {
                _ = crate::shutdown::stopped(&mut stop) => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let mut state = self.state.lock().await;
            wait = match self.load_locked(&mut state).await {
                Ok(lifetime) => lifetime.mul_f64(0.8),
                Err(error) => {
                    let stale = state
                        .last_success
                        .is_none_or(|at| at.elapsed() > self.config.stale_max);
                    if stale && !self.keys.kids(&self.config.issuer).is_empty() {
                        self.keys.replace_issuer(&self.config.issuer, Vec::new());
                        tracing::error!(issuer = %self.config.issuer, %error, "JWKS unavailable for longer than stale_max; this issuer's tokens are refused until it recovers");
                    } else {
                        tracing::warn!(issuer = %self.config.issuer, %error, "JWKS refresh failed; serving the last good keys");
                    }
                    self.config.refresh_min_interval
                }
            };
        }
    }

    async fn fetch(&self) -> Result<(Vec<(String, VerifyingKey)>, Option<Duration>), JwksError> {
        match (&self.config.source, &self.client) {
            (KeySource::JwksUri { uri, .. }, Some(client)) => {
                let timeout = self.config.fetch_timeout;
                let (bytes, max_age) = tokio::time::timeout(timeout, get(client, uri))
                    .await
                    .map_err(|_| JwksError::Timeout(timeout))??;
                Ok((parse_jwks(&bytes, &self.config.algorithms)?, max_age))
            }
            (KeySource::JwksFile(path), _) => {
                let bytes = read(path)?;
                Ok((parse_jwks(&bytes, &self.config.algorithms)?, None))
            }
            (KeySource::PublicKeyFile { path, kid }, _) => {
                let pem = read(path)?;
                Ok((
                    vec![(kid.clone(), key_from_pem(&pem, &self.config.algorithms)?)],
                    None,
                ))
            }
            (KeySource::JwksUri { .. }, None) => Err(JwksError::NoClient),
        }
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, JwksError> {
    std::fs::read(path).map_err(|source| JwksError::Read {
        path: path.to_path_buf(),
        source,
    })
}

async fn get(
    client: &HttpClient,
    uri: &hyper::Uri,
) -> Result<(Bytes, Option<Duration>), JwksError> {
    let request = hyper::Request::get(uri.clone())
        .header(header::ACCEPT, "application/jwk-set+json, application/json")
        .body(
            Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .map_err(|source| JwksError::Request {
            uri: uri.clone(),
            source,
        })?;
    let response = client
        .request(request)
        .await
        .map_err(|source| JwksError::Fetch {
            uri: uri.clone(),
            source: Box::new(source),
        })?;
    // Redirects are not followed: a JWKS must come from the configured host.
    if !response.status().is_success() {
        return Err(JwksError::Status(response.status().as_u16()));
    }
    let max_age = response
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(max_age);
    let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map_err(JwksError::Body)?;
    Ok((body.to_bytes(), max_age))
}
