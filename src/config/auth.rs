//! `[auth]` (how bearer tokens are found and which of our own algorithms are accepted) and
//! `[[issuers]]` (external identity providers whose tokens are trusted, and where their keys
//! come from).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use hyper::Uri;
use hyper::header::HeaderName;
use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::raw::{RawAuth, RawIssuer};
use super::{ConfigError, Resolver};

/// `[auth]`: verification of the tokens this gateway signs itself.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `iss` of the tokens this gateway signs.
    pub issuer: String,
    /// Algorithms accepted on our own tokens.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// Headers besides `Authorization: Bearer` that may carry the token.
    pub token_headers: Vec<HeaderName>,
    /// `token_cache_entries` (default 100 000): verified tokens cached by SHA-256 until `exp`
    /// (revocation is still checked on every hit).
    pub token_cache_entries: usize,
    /// How often our keys and revocations are reloaded from the store (cluster propagation).
    pub refresh_interval: Duration,
    /// Own tokens are refused (503) when revocations could not be reloaded for this long;
    /// zero: never.
    pub max_staleness: Duration,
    /// Pass the client's `Authorization` header on to upstreams (off: it is removed).
    pub forward_authorization: bool,
}

/// Where an external issuer's verification keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `jwks_uri`: fetched over https, cached within `cache_min`..`cache_max`.
    JwksUri {
        /// The JWKS endpoint (https, with a host: checked at load).
        uri: Uri,
        /// `ca_file`: the only trust anchor for the fetch; `None`: the system roots.
        ca_file: Option<PathBuf>,
    },
    /// `jwks_file`: a static JWKS document, re-read on reload.
    JwksFile(PathBuf),
    /// `public_key_file`: one PEM public key.
    PublicKeyFile {
        /// The PEM file.
        path: PathBuf,
        /// The `kid` the issuer's tokens name for this key (required).
        kid: String,
    },
}

/// How an external issuer's `sub` (and group) values are kept apart from local user ids: an
/// explicit choice per issuer, because an IdP's `sub: "1"` injected as `user_id: 1` is our
/// local user 1 to every upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectMapping {
    /// `subject = "local"`: the issuer's subjects are local user ids (an IdP fed from our
    /// users table).
    Local,
    /// `subject_prefix = "idp:"`: forwarded as `idp:<sub>`, never a local id.
    Prefix(String),
}

/// One `[[issuers]]` entry: an external identity provider whose tokens are accepted. Its keys
/// only ever verify tokens whose `iss` is `issuer`.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// The `iss` value that selects this entry.
    pub issuer: String,
    /// Where the verification keys come from.
    pub source: KeySource,
    /// Asymmetric algorithms only (HMAC is refused at load); each key is bound to one of them.
    pub algorithms: Vec<Algorithm>,
    /// When non-empty, `aud` is required and must name one of these.
    pub audiences: Vec<String>,
    /// The claim injected as the user id (default `sub`).
    pub user_claim: String,
    /// The claim injected as the group id; `None`: no group.
    pub group_claim: Option<String>,
    /// The claim holding roles; `None`: the issuer's tokens have no roles (no admin routes).
    pub roles_claim: Option<String>,
    /// How this issuer's subjects (and groups) relate to local ids.
    pub subjects: SubjectMapping,
    /// Its `act` claim (RFC 8693) names who acts for the user; audited on every request.
    pub trusted_for_delegation: bool,
    /// Accepted `typ` header values; empty: any.
    pub accepted_types: Vec<String>,
    /// At most one JWKS fetch per this interval (unknown-kid refreshes included).
    pub refresh_min_interval: Duration,
    /// Bounds on how long a fetched JWKS is used before the background refresh.
    pub cache_min: Duration,
    /// Upper bound (default 24 h); `cache_min` (default 5 min) never exceeds it.
    pub cache_max: Duration,
    /// How long the last good JWKS keeps serving while the endpoint fails.
    pub stale_max: Duration,
    /// `fetch_timeout` (default 5 s), per JWKS fetch.
    pub fetch_timeout: Duration,
}

impl Resolver {
    pub(super) fn auth(
        &self,
        raw: &RawAuth,
        listen: std::net::SocketAddr,
    ) -> Result<AuthConfig, ConfigError> {
        let algorithms = match &raw.algorithms {
            Some(list) => self.algorithms("auth.algorithms", list)?,
            None => vec![Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256],
        };
        let token_headers = match &raw.token_headers {
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(i, name)| self.header(&format!("auth.token_headers[{i}]"), Some(name), ""))
                .collect::<Result<_, _>>()?,
            None => vec![HeaderName::from_static("access-token")],
        };
        Ok(AuthConfig {
            issuer: raw
                .issuer
                .clone()
                .unwrap_or_else(|| format!("https://{listen}")),
            algorithms,
            leeway: self.duration(
                "auth.leeway",
                raw.leeway.as_deref(),
                Duration::from_secs(30),
            )?,
            token_headers,
            token_cache_entries: raw.token_cache_entries.unwrap_or(100_000),
            refresh_interval: self.duration(
                "auth.refresh_interval",
                raw.refresh_interval.as_deref(),
                Duration::from_secs(2),
            )?,
            max_staleness: self.duration(
                "auth.max_staleness",
                raw.max_staleness.as_deref(),
                Duration::from_secs(900),
            )?,
            forward_authorization: raw.forward_authorization.unwrap_or(false),
        })
    }

    pub(super) fn issuers(
        &self,
        raw: &[RawIssuer],
        own_issuer: &str,
    ) -> Result<Vec<IssuerConfig>, ConfigError> {
        let mut issuers: Vec<IssuerConfig> = Vec::with_capacity(raw.len());
        for (i, raw_issuer) in raw.iter().enumerate() {
            let issuer = self.issuer(i, raw_issuer)?;
            if issuer.issuer == own_issuer || issuers.iter().any(|e| e.issuer == issuer.issuer) {
                return Err(self.err(
                    format!("issuers[{i}].issuer"),
                    format!(
                        "`{}` is configured twice (or is our own issuer)",
                        issuer.issuer
                    ),
                ));
            }
            issuers.push(issuer);
        }
        Ok(issuers)
    }

    fn issuer(&self, i: usize, raw: &RawIssuer) -> Result<IssuerConfig, ConfigError> {
        let key = |field: &str| format!("issuers[{i}].{field}");
        let source = self.key_source(i, raw)?;
        if raw.ca_file.is_some() && !matches!(source, KeySource::JwksUri { .. }) {
            return Err(self.err(key("ca_file"), "only a jwks_uri takes a ca_file"));
        }
        let algorithms = self.algorithms(&key("algorithms"), &raw.algorithms)?;
        let cache_min = self.duration(
            &key("cache_min"),
            raw.cache_min.as_deref(),
            Duration::from_secs(300),
        )?;
        let cache_max = self.duration(
            &key("cache_max"),
            raw.cache_max.as_deref(),
            Duration::from_secs(86_400),
        )?;
        if cache_min > cache_max {
            return Err(self.err(key("cache_min"), "must not exceed cache_max"));
        }
        let subjects = self.subject_mapping(i, raw)?;
        Ok(IssuerConfig {
            issuer: raw.issuer.clone(),
            subjects,
            trusted_for_delegation: raw.trusted_for_delegation,
            source,
            algorithms,
            audiences: raw.audiences.clone(),
            user_claim: raw.user_claim.clone().unwrap_or_else(|| "sub".to_owned()),
            group_claim: raw.group_claim.clone(),
            roles_claim: raw.roles_claim.clone(),
            accepted_types: raw.accepted_types.clone(),
            refresh_min_interval: self.duration(
                &key("refresh_min_interval"),
                raw.refresh_min_interval.as_deref(),
                Duration::from_secs(30),
            )?,
            cache_min,
            cache_max,
            stale_max: self.duration(
                &key("stale_max"),
                raw.stale_max.as_deref(),
                Duration::from_secs(86_400),
            )?,
            fetch_timeout: self.duration(
                &key("fetch_timeout"),
                raw.fetch_timeout.as_deref(),
                Duration::from_secs(5),
            )?,
        })
    }

    /// Where the issuer's keys come from: exactly one of `jwks_uri` (https only),
    /// `jwks_file`, `public_key_file` (which needs the `kid` its tokens name).
    fn key_source(&self, i: usize, raw: &RawIssuer) -> Result<KeySource, ConfigError> {
        let key = |field: &str| format!("issuers[{i}].{field}");
        let source = match (&raw.jwks_uri, &raw.jwks_file, &raw.public_key_file) {
            (Some(uri), None, None) => {
                let parsed: Uri = uri
                    .parse()
                    .map_err(|_| self.err(key("jwks_uri"), format!("`{uri}` is not a URL")))?;
                if parsed.scheme_str() != Some("https") || parsed.host().is_none() {
                    return Err(self.err(key("jwks_uri"), "JWKS are fetched over https only"));
                }
                KeySource::JwksUri {
                    uri: parsed,
                    ca_file: raw.ca_file.as_deref().map(|p| self.path(p)),
                }
            }
            (None, Some(file), None) => KeySource::JwksFile(self.path(file)),
            (None, None, Some(file)) => KeySource::PublicKeyFile {
                path: self.path(file),
                kid: raw.kid.clone().ok_or_else(|| {
                    self.err(
                        key("kid"),
                        "a public_key_file needs the kid its tokens name",
                    )
                })?,
            },
            _ => {
                return Err(self.err(
                    key("jwks_uri"),
                    "set exactly one of jwks_uri, jwks_file, public_key_file",
                ));
            }
        };
        Ok(source)
    }

    /// How the issuer's subjects relate to local user ids: `subject = "local"` (they are local
    /// ids) or a `subject_prefix` that keeps them apart; exactly one must be said.
    fn subject_mapping(&self, i: usize, raw: &RawIssuer) -> Result<SubjectMapping, ConfigError> {
        let key = |field: &str| format!("issuers[{i}].{field}");
        let subjects = match (raw.subject.as_deref(), raw.subject_prefix.as_deref()) {
            (Some("local"), None) => SubjectMapping::Local,
            (Some(other), None) => {
                return Err(self.err(
                    key("subject"),
                    format!("`{other}` is not \"local\" (or use subject_prefix)"),
                ));
            }
            (None, Some(prefix)) => {
                let usable = (1..=64).contains(&prefix.len())
                    && !prefix.bytes().all(|b| b.is_ascii_digit())
                    && prefix
                        .chars()
                        .all(|c| c.is_ascii_graphic() && c != ',' && c != '"');
                if !usable {
                    return Err(self.err(
                        key("subject_prefix"),
                        "1 to 64 visible ASCII characters, not only digits, no comma or quote (e.g. \"idp:\")",
                    ));
                }
                SubjectMapping::Prefix(prefix.to_owned())
            }
            (Some(_), Some(_)) => {
                return Err(self.err(
                    key("subject_prefix"),
                    "set either subject = \"local\" or subject_prefix, not both",
                ));
            }
            (None, None) => {
                return Err(self.err(
                    key("subject_prefix"),
                    "say how this issuer's subjects relate to local user ids: subject_prefix = \"idp:\" keeps them apart, subject = \"local\" declares them local user ids",
                ));
            }
        };
        Ok(subjects)
    }

    /// Asymmetric algorithms only: an HMAC secret shared with an IdP would let the IdP (or anyone
    /// holding a public key mistaken for a secret) mint tokens.
    pub(super) fn algorithms(
        &self,
        key: &str,
        names: &[String],
    ) -> Result<Vec<Algorithm>, ConfigError> {
        if names.is_empty() {
            return Err(self.err(key, "name at least one algorithm"));
        }
        names
            .iter()
            .map(|name| match Algorithm::from_str(name) {
                Ok(alg) if alg.family() != AlgorithmFamily::Hmac => Ok(alg),
                Ok(_) => Err(self.err(key, format!("`{name}`: HMAC algorithms are not accepted"))),
                Err(_) => Err(self.err(
                    key,
                    format!("`{name}` is not a JWS algorithm (e.g. ES256, EdDSA, RS256)"),
                )),
            })
            .collect()
    }
}
