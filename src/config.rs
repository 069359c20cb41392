//! Typed configuration: loads `gateway.toml` (then `AUTHGATE__SECTION__KEY` environment
//! overrides) into [`Config`]. Two stages: `raw` says what the file says; this module turns it
//! into durations, socket addresses, URLs and header names, and every error names the file and
//! the key path (`routes[2].upstream`). Nothing outside this module parses config text.

mod auth;
mod describe;
mod dialects;
mod forward_auth;
mod providers;
mod raw;
mod route;
mod store;
mod units;
mod users;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::header::HeaderName;
use ipnet::IpNet;

pub use auth::{AuthConfig, IssuerConfig, KeySource, SubjectMapping};
pub use describe::{Served, describe};
pub use dialects::{
    AppConfig, DialectsConfig, LoginConfig, MobileConfig, Oauth2Config, OpenIdConfig,
    PassportConfig, PassportLogin, TokenFormat, TokensConfig,
};
pub use forward_auth::{BrowserResponse, ForwardAuthConfig};
pub use providers::{
    Allowed, ClaimMatch, ClientSecret, DEFAULT_MAX_SESSION, GroupMapping, ProviderConfig,
};
use raw::{RawConfig, RawSize};
pub use route::{
    AuthPolicy, HostMatch, RateKey, RateLimitConfig, RequestRules, RouteConfig, RouteSessionLimits,
    Upstream,
};
pub use store::{DEFAULT_KEY_SECRET_ENV, DEFAULT_STORE_URL, StoreBackend, StoreConfig};
pub use units::{parse_duration, parse_size};
pub use users::{LegacyBackend, LegacyUsersConfig, SqlText};

/// A config problem, always naming the file and, where there is one, the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read or is not TOML; `message` is one line (position: reason).
    #[error("{file}: {message}")]
    Parse {
        /// The config file, as given on the command line.
        file: String,
        /// Position and reason, on one line.
        message: String,
    },
    /// A key holds a value the gateway cannot use (or is unknown, or is missing).
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The config file, as given on the command line.
        file: String,
        /// The key path, dotted with indices (`routes[2].upstream`, `server.listen`).
        key: String,
        /// What is wrong with it, for an operator.
        message: String,
    },
}

/// The whole validated configuration: every value typed, every path absolute (relative ones
/// resolved against the config file's directory). Immutable once built; a reload builds a new one.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this config came from.
    pub source: PathBuf,
    /// `[server]`: listeners, connection caps and timeouts.
    pub server: ServerConfig,
    /// `[tls]`: the certificate and key the HTTPS listener presents.
    pub tls: TlsConfig,
    /// `[admin]`: the health/metrics listener; `None` when the section is absent (no listener).
    pub admin: Option<AdminConfig>,
    /// `[log]`: log format, filter and access log.
    pub log: LogConfig,
    /// `[upstream]`: outbound connection timeouts and pooling, shared by every route.
    pub upstream: UpstreamConfig,
    /// `[identity]`: the header names that carry the verified identity upstream.
    pub identity: IdentityConfig,
    /// `[[routes]]` in file order (matching order is longest prefix first; `proxy::routes`).
    pub routes: Vec<RouteConfig>,
    /// `[auth]`: verification of our own tokens and the issuer name we sign with.
    pub auth: AuthConfig,
    /// `[[issuers]]`: external identity providers whose tokens are accepted.
    pub issuers: Vec<IssuerConfig>,
    /// `[store]` (and `[audit] file`): where users, clients, keys and tokens live.
    pub store: StoreConfig,
    /// `[tokens]`: default lifetimes of what the grant engine issues.
    pub tokens: TokensConfig,
    /// `[dialects.*]`: which token-endpoint dialects are served, on which paths.
    pub dialects: DialectsConfig,
    /// `[login]`: the login page's sessions.
    pub login: LoginConfig,
    /// `[users.sql]`: the legacy users table, if any.
    pub legacy_users: Option<LegacyUsersConfig>,
    /// `[forward_auth]`: the check endpoint for an edge proxy; `None` when the table is absent.
    pub forward_auth: Option<ForwardAuthConfig>,
}

/// `[server]`. Everything here except the body/header limits is bound at start: a reload that
/// changes it is logged as needing a restart (`server/reload.rs`).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `listen` (required): the HTTPS listener (HTTP/1.1 and HTTP/2 by ALPN).
    pub listen: SocketAddr,
    /// `plain_listen`: a plain-HTTP listener for use behind a TLS-terminating load balancer only.
    pub plain_listen: Option<SocketAddr>,
    /// `max_connections` (default 10 000, at least 1): open client connections; further clients
    /// wait in the accept backlog.
    pub max_connections: usize,
    /// Open connections per client address (IPv6 per /64), trusted proxies exempt; `None`: no
    /// cap (`max_connections_per_ip = 0`).
    pub max_connections_per_ip: Option<usize>,
    /// Connections from `trusted_proxies` begin with a PROXY protocol header (v1 or v2) whose
    /// source address becomes the connection's peer.
    pub proxy_protocol: bool,
    /// Async worker threads; 0 = one per core.
    pub worker_threads: usize,
    /// `tls_handshake_timeout` (default 10 s; also bounds reading a PROXY header).
    pub tls_handshake_timeout: Duration,
    /// `header_read_timeout` (default 10 s): the first request head counts from the connection's
    /// start (after TLS), later HTTP/1 heads from their first byte.
    pub header_read_timeout: Duration,
    /// `idle_timeout` (default 60 s): a connection with nothing in flight this long is closed.
    pub idle_timeout: Duration,
    /// `shutdown_grace` (default 30 s): how long in-flight requests get after SIGTERM/SIGINT.
    pub shutdown_grace: Duration,
    /// `max_header_bytes` (default 16 KiB, 1 KiB to 1 MiB): the request header section as
    /// HTTP/2 counts it (name + value + 32 per field); beyond it 431.
    pub max_header_bytes: usize,
    /// `max_body_bytes` (default 10 MiB): the request body limit of routes that set none; beyond it 413.
    pub max_body_bytes: u64,
    /// `trusted_proxies`: peers whose `Forwarded`/`X-Forwarded-*` headers are believed (and
    /// who may send a PROXY header); from anyone else those headers are removed.
    pub trusted_proxies: Vec<IpNet>,
    /// Written at start so `authgate reload` can find the process.
    pub pid_file: Option<PathBuf>,
}

/// `[tls]`: re-read on every reload, so a renewed certificate is served without a restart.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// PEM certificate chain (required).
    pub cert: PathBuf,
    /// PEM private key (required).
    pub key: PathBuf,
    /// `dev_self_signed` (default false): generate a self-signed localhost certificate at `cert`
    /// and `key` when they are missing. Development only.
    pub dev_self_signed: bool,
}

/// `[admin]`: the plain-HTTP admin listener (`/healthz`, `/readyz`, `/metrics`).
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Where it listens; keep it on localhost or a private network (no authentication).
    pub listen: SocketAddr,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default), coloured only on a terminal without `NO_COLOR`.
    Pretty,
    /// One JSON object per line, fields flattened, for collectors.
    Json,
}

/// `[log]`. `format` and `level` are bound at start (a reload that changes them asks for a restart).
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `format` (default pretty).
    pub format: LogFormat,
    /// `level` (default "info"): a tracing filter, already checked to parse; `RUST_LOG` overrides it.
    pub level: String,
    /// `access_log` (default true): one `authgate::access` event per request.
    pub access_log: bool,
    /// `log_query` (default false): include query strings in the access log (token endpoints
    /// carry secrets there, hence off).
    pub log_query: bool,
}

/// `[upstream]`: the outbound HTTP client shared by every route.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `connect_timeout` (default 5 s): a refused or unreachable upstream is a 502.
    pub connect_timeout: Duration,
    /// `pool_idle_timeout` (default 90 s): pooled idle upstream connections are closed after this.
    pub pool_idle_timeout: Duration,
    /// `pool_max_idle_per_host` (default 64): idle pooled connections kept per upstream.
    pub pool_max_idle_per_host: usize,
    /// How long an idle client connection keeps its own upstream connections; zero: never
    /// (`proxy/affinity.rs`).
    pub affinity_idle_timeout: Duration,
}

/// `[identity]`: header names that carry the verified identity to upstreams. Every one of them,
/// in any loose spelling, is removed from client requests (`proxy/headers.rs`).
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// `user_header` (default `user_id`): the verified user id.
    pub user_header: HeaderName,
    /// `group_header` (default `group_id`): the verified group id.
    pub group_header: HeaderName,
    /// `impersonator_header` (default `x-impersonator-id`): the admin acting for another user.
    pub impersonator_header: HeaderName,
    /// When set, the token's scopes (space-separated) are injected under this name.
    pub scope_header: Option<HeaderName>,
    /// Where a route with `identity_assertion = true` puts the signed identity assertion.
    pub assertion_header: HeaderName,
    /// Carries the client id of a `client_credentials` token (which has no user).
    pub client_header: HeaderName,
    /// Names a client must never be able to send upstream besides the identity names: the
    /// defaults ([`DEFAULT_STRIP_HEADERS`]) minus the `!`-kept ones, plus the operator's.
    pub strip_headers: Vec<StripHeader>,
}

/// One `strip_headers` entry: a name, or with `prefix` every name that starts with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripHeader {
    /// The header name (lower case), or the prefix when `prefix` is set.
    pub name: HeaderName,
    /// Written `"Name*"`: every name starting with `name` matches.
    pub prefix: bool,
}

/// Removed from every request before it is forwarded (`[identity] strip_headers` adds to
/// these; `"!Name"` keeps one). Upstream frameworks trust them: routing by the original URL
/// (Symfony, Zend, IIS), the client address (nginx realip, CDNs), method overrides (Laravel,
/// Symfony, Express; a route's `method_override = true` keeps those three), and the identity
/// headers of other auth proxies (oauth2-proxy, Authelia, Grafana, Envoy, Kong, Google IAP,
/// AWS ALB, Cloudflare Access, Azure App Service, TLS terminators) that migrated apps still
/// believe.
pub const DEFAULT_STRIP_HEADERS: [&str; 31] = [
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-Original-URI",
    "X-Real-IP",
    "True-Client-IP",
    "X-Client-IP",
    "CF-Connecting-IP",
    "Fastly-Client-IP",
    "X-Cluster-Client-IP",
    "X-HTTP-Method-Override",
    "X-HTTP-Method",
    "X-Method-Override",
    "Remote-*",
    "X-User",
    "X-Group",
    "X-Forwarded-User",
    "X-Forwarded-Email",
    "X-Forwarded-Preferred-Username",
    "X-Auth-Request-*",
    "X-WEBAUTH-USER",
    "X-Forwarded-Client-Cert",
    "X-SSL-Client-*",
    "X-MS-CLIENT-PRINCIPAL*",
    "x-envoy-*",
    "X-Authenticated-User*",
    "X-Consumer-*",
    "X-Goog-Authenticated-User-*",
    "X-Amzn-Oidc-*",
    "Cf-Access-*",
    "Client-IP",
    "X-ProxyUser-Ip",
];

/// The method override headers among [`DEFAULT_STRIP_HEADERS`].
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

impl IdentityConfig {
    /// Every identity header name the config declares anywhere, routes included.
    pub fn all_names<'a>(
        &'a self,
        routes: &'a [RouteConfig],
    ) -> impl Iterator<Item = &'a HeaderName> {
        [
            &self.user_header,
            &self.group_header,
            &self.impersonator_header,
            &self.assertion_header,
            &self.client_header,
        ]
        .into_iter()
        .chain(self.scope_header.iter())
        .chain(
            routes
                .iter()
                .flat_map(|r| [&r.user_header, &r.group_header]),
        )
    }
}

/// Reads `path`, applies environment overrides, and validates everything.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let raw: RawConfig = ::config::Config::builder()
        .add_source(::config::File::from(path).format(::config::FileFormat::Toml))
        .add_source(
            ::config::Environment::with_prefix("AUTHGATE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        )
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| loader_error(&file, e))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Resolver { file, base }.config(raw, path)
}

/// Rewrites the `config` crate's errors into the `file: key.path: problem` form used for every
/// other config error (it reports unknown keys against their parent table, and loses the dot
/// after an array index).
fn loader_error(file: &str, error: ::config::ConfigError) -> ConfigError {
    use ::config::ConfigError as E;
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        file: file.to_owned(),
        key: dotted(key),
        message,
    };
    match error {
        E::At {
            error,
            key: Some(key),
            ..
        } => match *error {
            E::Message(message) => match unknown_field(&message) {
                Some((field, rest)) => {
                    invalid(&format!("{key}.{field}"), format!("unknown key{rest}"))
                }
                None => invalid(&key, message),
            },
            E::NotFound(field) => invalid(&format!("{key}.{field}"), "is required".to_owned()),
            other => invalid(&key, other.to_string()),
        },
        E::Type {
            key: Some(key),
            unexpected,
            expected,
            ..
        } => invalid(
            &key,
            format!("invalid type: {unexpected}, expected {expected}"),
        ),
        E::NotFound(key) => invalid(&key, "is required".to_owned()),
        E::Message(message) => match unknown_field(&message) {
            Some((field, rest)) => invalid(field, format!("unknown key{rest}")),
            None => ConfigError::Parse {
                file: file.to_owned(),
                message,
            },
        },
        E::FileParse { cause, .. } => ConfigError::Parse {
            file: file.to_owned(),
            message: one_line(&cause.to_string()),
        },
        other => ConfigError::Parse {
            file: file.to_owned(),
            message: other.to_string(),
        },
    }
}

/// TOML syntax errors come with a multi-line source excerpt; the CLI promises one line, so keep
/// the position (first line) and the reason (last line).
fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.contains(" | "))
        .collect();
    match lines.as_slice() {
        [] => message.to_owned(),
        [only] => (*only).to_owned(),
        [first, .., last] => format!("{first}: {last}"),
    }
}

/// Splits serde's "unknown field `x`, expected one of …" into (`x`, ", expected one of …").
fn unknown_field(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix("unknown field `")?;
    let end = rest.find('`')?;
    Some((&rest[..end], &rest[end + 1..]))
}

/// `routes[1]upstream` → `routes[1].upstream`.
fn dotted(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 2);
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == ']' && chars.peek().is_some_and(|n| *n != '.' && *n != '[') {
            out.push('.');
        }
    }
    out
}

/// Turns raw values into typed ones, blaming `file` and a key path on failure.
struct Resolver {
    file: String,
    base: PathBuf,
}

impl Resolver {
    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn duration(
        &self,
        key: &str,
        value: Option<&str>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match value {
            None => Ok(default),
            Some(text) => parse_duration(text).map_err(|m| self.err(key, m)),
        }
    }

    fn size(&self, key: &str, value: Option<&RawSize>, default: u64) -> Result<u64, ConfigError> {
        match value {
            None => Ok(default),
            Some(RawSize::Bytes(n)) => Ok(*n),
            Some(RawSize::Text(text)) => parse_size(text).map_err(|m| self.err(key, m)),
        }
    }

    fn addr(&self, key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
        value.parse().map_err(|_| {
            self.err(
                key,
                format!("`{value}` is not an address like \"127.0.0.1:8443\""),
            )
        })
    }

    fn header(
        &self,
        key: &str,
        value: Option<&str>,
        default: &str,
    ) -> Result<HeaderName, ConfigError> {
        let name = value.unwrap_or(default);
        HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| self.err(key, format!("`{name}` is not a valid header name")))
    }

    /// Relative paths in the config are relative to the config file, not the working directory.
    fn path(&self, value: &str) -> PathBuf {
        let path = Path::new(value);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base.join(path)
        }
    }

    fn config(&self, raw: RawConfig, source: &Path) -> Result<Config, ConfigError> {
        let server = self.server(&raw.server)?;
        let identity = self.identity(&raw.identity)?;
        let routes = route::resolve_all(self, &raw.routes, &identity, server.max_body_bytes)?;
        let auth = self.auth(&raw.auth, server.listen)?;
        let issuers = self.issuers(&raw.issuers, &auth.issuer)?;
        let dialects = self.dialects(&raw.dialects)?;
        let login = self.login(&raw.login, &raw.dialects)?;
        let signin = dialects.oauth2.as_ref().and_then(|o| o.signin.as_deref());
        route::check_sessions(self, &routes, &login, signin)?;
        let forward_auth = self.forward_auth(raw.forward_auth.as_ref())?;
        route::check_check_only(self, &routes, forward_auth.is_some())?;
        Ok(Config {
            forward_auth,
            source: source.to_path_buf(),
            tls: TlsConfig {
                cert: self.path(&raw.tls.cert),
                key: self.path(&raw.tls.key),
                dev_self_signed: raw.tls.dev_self_signed,
            },
            admin: match &raw.admin {
                Some(a) => Some(AdminConfig {
                    listen: self.addr("admin.listen", &a.listen)?,
                }),
                None => None,
            },
            log: self.log(&raw.log)?,
            upstream: self.upstream(&raw.upstream)?,
            store: {
                let mut store = self.store(&raw.store)?;
                store.audit_file = match raw.audit.file.as_deref() {
                    Some("") => return Err(self.err("audit.file", "must not be empty")),
                    Some(file) => Some(self.path(file)),
                    None => None,
                };
                store
            },
            tokens: self.tokens(&raw.tokens)?,
            dialects,
            login,
            legacy_users: raw
                .users
                .sql
                .as_ref()
                .map(|sql| self.legacy_users(sql))
                .transpose()?,
            server,
            identity,
            routes,
            auth,
            issuers,
        })
    }

    fn server(&self, raw: &raw::RawServer) -> Result<ServerConfig, ConfigError> {
        let trusted_proxies = raw
            .trusted_proxies
            .iter()
            .enumerate()
            .map(|(i, text)| {
                parse_cidr(text).map_err(|m| self.err(format!("server.trusted_proxies[{i}]"), m))
            })
            .collect::<Result<_, _>>()?;
        let max_connections = raw.max_connections.unwrap_or(10_000);
        if max_connections == 0 {
            return Err(self.err("server.max_connections", "must be at least 1"));
        }
        let proxy_protocol = raw.proxy_protocol.unwrap_or(false);
        if proxy_protocol && raw.trusted_proxies.is_empty() {
            return Err(self.err(
                "server.proxy_protocol",
                "is accepted only from server.trusted_proxies, which is empty",
            ));
        }
        let max_header_bytes = self.size(
            "server.max_header_bytes",
            raw.max_header_bytes.as_ref(),
            16 << 10,
        )?;
        if !(1024..=1 << 20).contains(&max_header_bytes) {
            return Err(self.err("server.max_header_bytes", "must be between 1KiB and 1MiB"));
        }
        Ok(ServerConfig {
            listen: self.addr("server.listen", &raw.listen)?,
            plain_listen: match &raw.plain_listen {
                Some(a) => Some(self.addr("server.plain_listen", a)?),
                None => None,
            },
            max_connections,
            // 0 turns the cap off (every client behind one NAT address, say).
            max_connections_per_ip: match raw.max_connections_per_ip.unwrap_or(256) {
                0 => None,
                max => Some(max),
            },
            proxy_protocol,
            worker_threads: raw.worker_threads.unwrap_or(0),
            pid_file: match raw.pid_file.as_deref() {
                Some("") => return Err(self.err("server.pid_file", "must not be empty")),
                Some(file) => Some(self.path(file)),
                None => None,
            },
            tls_handshake_timeout: self.duration(
                "server.tls_handshake_timeout",
                raw.tls_handshake_timeout.as_deref(),
                Duration::from_secs(10),
            )?,
            header_read_timeout: self.duration(
                "server.header_read_timeout",
                raw.header_read_timeout.as_deref(),
                Duration::from_secs(10),
            )?,
            idle_timeout: self.duration(
                "server.idle_timeout",
                raw.idle_timeout.as_deref(),
                Duration::from_secs(60),
            )?,
            shutdown_grace: self.duration(
                "server.shutdown_grace",
                raw.shutdown_grace.as_deref(),
                Duration::from_secs(30),
            )?,
            max_header_bytes: max_header_bytes as usize,
            max_body_bytes: self.size(
                "server.max_body_bytes",
                raw.max_body_bytes.as_ref(),
                10 << 20,
            )?,
            trusted_proxies,
        })
    }

    fn log(&self, raw: &raw::RawLog) -> Result<LogConfig, ConfigError> {
        let format = match raw.format.as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(self.err(
                    "log.format",
                    format!("`{other}` is not one of \"pretty\", \"json\""),
                ));
            }
        };
        let level = raw.level.clone().unwrap_or_else(|| "info".to_owned());
        if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
            return Err(self.err(
                "log.level",
                format!("`{level}` is not a log filter (e.g. \"info\", \"authgate=debug\")"),
            ));
        }
        Ok(LogConfig {
            format,
            level,
            access_log: raw.access_log.unwrap_or(true),
            log_query: raw.log_query.unwrap_or(false),
        })
    }

    fn upstream(&self, raw: &raw::RawUpstream) -> Result<UpstreamConfig, ConfigError> {
        Ok(UpstreamConfig {
            connect_timeout: self.duration(
                "upstream.connect_timeout",
                raw.connect_timeout.as_deref(),
                Duration::from_secs(5),
            )?,
            pool_idle_timeout: self.duration(
                "upstream.pool_idle_timeout",
                raw.pool_idle_timeout.as_deref(),
                Duration::from_secs(90),
            )?,
            pool_max_idle_per_host: raw.pool_max_idle_per_host.unwrap_or(64),
            affinity_idle_timeout: self.duration(
                "upstream.affinity_idle_timeout",
                raw.affinity_idle_timeout.as_deref(),
                Duration::from_secs(2),
            )?,
        })
    }

    fn identity(&self, raw: &raw::RawIdentity) -> Result<IdentityConfig, ConfigError> {
        Ok(IdentityConfig {
            user_header: self.header(
                "identity.user_header",
                raw.user_header.as_deref(),
                "user_id",
            )?,
            group_header: self.header(
                "identity.group_header",
                raw.group_header.as_deref(),
                "group_id",
            )?,
            impersonator_header: self.header(
                "identity.impersonator_header",
                raw.impersonator_header.as_deref(),
                "x-impersonator-id",
            )?,
            scope_header: raw
                .scope_header
                .as_deref()
                .map(|name| self.header("identity.scope_header", Some(name), ""))
                .transpose()?,
            assertion_header: self.header(
                "identity.assertion_header",
                raw.assertion_header.as_deref(),
                "x-authgate-assertion",
            )?,
            client_header: self.header(
                "identity.client_header",
                raw.client_header.as_deref(),
                "x-client-id",
            )?,
            strip_headers: self.strip_headers(&raw.strip_headers)?,
        })
    }

    /// The defaults, minus `"!Name"` entries, plus the operator's names (`"Name*"`: a prefix).
    fn strip_headers(&self, raw: &[String]) -> Result<Vec<StripHeader>, ConfigError> {
        let entry = |key: &str, text: &str| -> Result<StripHeader, ConfigError> {
            let (name, prefix) = match text.strip_suffix('*') {
                Some(name) => (name, true),
                None => (text, false),
            };
            let name = self.header(key, Some(name), "")?;
            // Compared without punctuation and leading `x`s (`proxy::headers::IdentityNames`).
            if !name
                .as_str()
                .bytes()
                .any(|b| b.is_ascii_alphanumeric() && b != b'x')
            {
                return Err(self.err(key, format!("`{text}` has no letter or digit besides `x`")));
            }
            Ok(StripHeader { name, prefix })
        };
        let mut list: Vec<StripHeader> = DEFAULT_STRIP_HEADERS
            .iter()
            .map(|text| entry("identity.strip_headers", text))
            .collect::<Result<_, _>>()?;
        for (i, text) in raw.iter().enumerate() {
            let key = format!("identity.strip_headers[{i}]");
            match text.strip_prefix('!') {
                Some(kept) => {
                    let kept = entry(&key, kept)?;
                    let before = list.len();
                    list.retain(|e| *e != kept);
                    if list.len() == before {
                        return Err(self.err(
                            &key,
                            format!(
                                "`{text}` keeps a header, but `{}` is not a default",
                                &text[1..]
                            ),
                        ));
                    }
                }
                None => list.push(entry(&key, text)?),
            }
        }
        Ok(list)
    }
}

/// A CIDR (`10.0.0.0/8`) or a single address (`10.1.2.3`, taken as /32 or /128).
pub(super) fn parse_cidr(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is not a CIDR like \"10.0.0.0/8\" or an address"))
}
