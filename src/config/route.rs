//! Route entries: parsing and validating `[[routes]]`, including the check that no route is a
//! duplicate of, or hidden behind, an earlier one.

use std::path::PathBuf;
use std::time::Duration;

use hyper::header::HeaderName;
use hyper::http::uri::{Authority, Scheme};
use hyper::{Method, Uri};

use super::raw::{RawGroup, RawRateLimit, RawRoute};
use super::{ConfigError, IdentityConfig, Resolver};

/// A route's `auth`: what a request needs before it is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPolicy {
    /// No token needed; a token that is sent is still verified (and a bad one refused).
    Public,
    /// A valid bearer token (the default).
    Authenticated,
    /// A valid bearer token whose user has the `admin` role.
    Admin,
    /// A browser session (the `__Host-authgate-session` cookie the sign-in page sets); a
    /// browser navigation without one is sent to the sign-in page. Bearer tokens are not read.
    Session,
    /// A bearer token when the request carries one (it alone decides), else a session.
    SessionOrBearer,
}

impl AuthPolicy {
    /// The config spelling, as `authgate check` and the logs show it.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthPolicy::Public => "public",
            AuthPolicy::Authenticated => "authenticated",
            AuthPolicy::Admin => "admin",
            AuthPolicy::Session => "session",
            AuthPolicy::SessionOrBearer => "session_or_bearer",
        }
    }

    /// Whether a request may present a bearer token here (public routes verify one if sent).
    pub fn reads_bearer(self) -> bool {
        self != AuthPolicy::Session
    }

    /// Whether a browser session (the cookie) authenticates here.
    pub fn reads_session(self) -> bool {
        matches!(self, AuthPolicy::Session | AuthPolicy::SessionOrBearer)
    }
}

/// Where a route sends its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// Answers with a JSON description of the request as an upstream would receive it.
    Echo,
    /// `"none"`: nothing is forwarded; the route only decides for an edge proxy
    /// (`[forward_auth]`), and a request that reaches the gateway itself is 404.
    None,
    /// An `http://` or `https://` upstream; its path (`base_path`) is kept apart from the authority.
    Http {
        /// `http` or `https` (checked at load).
        scheme: Scheme,
        /// Host and port the requests are sent to.
        authority: Authority,
        /// Path prepended to the forwarded path; empty or `/base` (never a trailing slash).
        base_path: String,
    },
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Upstream::Echo => f.write_str("builtin:echo"),
            Upstream::None => f.write_str("none"),
            Upstream::Http {
                scheme,
                authority,
                base_path,
            } => write!(f, "{scheme}://{authority}{base_path}"),
        }
    }
}

/// A host to match: exact (`api.example.com`) or any subdomain (`*.example.com`). Lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// The whole host.
    Exact(String),
    /// Holds the suffix including the dot: `.example.com`.
    Suffix(String),
}

impl HostMatch {
    /// `host` must already be lowercase and without a port.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostMatch::Exact(h) => h == host,
            HostMatch::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        }
    }
}

impl std::fmt::Display for HostMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostMatch::Exact(h) => f.write_str(h),
            HostMatch::Suffix(s) => write!(f, "*{s}"),
        }
    }
}

/// One `[[routes]]` entry: where a prefix is forwarded and what a request needs to get there.
/// No two routes hide each other (checked at load).
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// `name` (default: the prefix): the route in logs, metrics and `authgate check`.
    pub name: String,
    /// `host`: the request's host must match (port ignored); `None`: any host.
    pub host: Option<HostMatch>,
    /// Normalised, no trailing slash unless it is `/`.
    pub prefix: String,
    /// `None` means every method.
    pub methods: Option<Vec<Method>>,
    /// `upstream` (required): where matching requests are forwarded.
    pub upstream: Upstream,
    /// `ca_file`: the only trust anchors for an https upstream; `None`: the system roots.
    pub ca_file: Option<PathBuf>,
    /// `h2c`: HTTP/2 with prior knowledge to an `http://` upstream (checked at load).
    pub h2c: bool,
    /// `strip_prefix`: `/svc/x` is forwarded as `<base>/x`.
    pub strip_prefix: bool,
    /// `preserve_host`: forward the client's `Host` instead of the upstream's authority.
    pub preserve_host: bool,
    /// `timeout` (default 30 s): until the upstream's response headers, then 504.
    pub timeout: Duration,
    /// `max_body_bytes` (default `server.max_body_bytes`): request body limit, then 413.
    pub max_body_bytes: u64,
    /// `auth` (default authenticated).
    pub auth: AuthPolicy,
    /// `user_header` (default `identity.user_header`): this route's name for the user id.
    pub user_header: HeaderName,
    /// `group_header` (default `identity.group_header`): this route's name for the group id.
    pub group_header: HeaderName,
    /// Scopes a token must carry (all of them) on this route.
    pub scopes: Vec<String>,
    /// When not empty, the token's `aud` must name one of these.
    pub audiences: Vec<String>,
    /// `allowed_groups`: when not empty, the group the request is forwarded with (the
    /// principal's current group, or the group an admin acts in) must be one of these, as
    /// text (`7`, `"idp:7"`); a request without a group (a client's own token) is refused.
    pub allowed_groups: Vec<String>,
    /// Admins may act for other users here (default true).
    pub impersonation: bool,
    /// Add a signed identity assertion header for the upstream to verify.
    pub identity_assertion: bool,
    /// Accept `client_credentials` tokens (a client acting for itself, no user): the client id
    /// goes in `identity.client_header` and no user or group header is set. Default false.
    pub allow_clients: bool,
    /// Requests allowed per key (token bucket); `None`: unlimited.
    pub rate_limit: Option<RateLimitConfig>,
    /// How the route reads what legacy upstreams could read differently.
    pub rules: RequestRules,
    /// `session_ttl` / `idle_timeout` on a session route: stricter limits than `[login]`'s
    /// for sessions used here (`None`: `[login]`'s). A session they refuse is sent to sign in
    /// again.
    pub session: RouteSessionLimits,
}

/// A session route's own limits; each only shortens `[login]`'s (checked at load).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteSessionLimits {
    /// The longest since sign-in a session may be used on this route.
    pub absolute: Option<Duration>,
    /// The longest a session may have gone unused before a request on this route.
    pub idle: Option<Duration>,
}

/// A route's relaxations (and one tightening) of the rules that keep the gateway's reading of
/// a request the upstream's (`proxy/readings.rs`, `proxy/headers.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRules {
    /// `path_parsing = "strict"`: refuse a request whose path readings select different routes.
    pub strict_paths: bool,
    /// Percent-encoded bytes that are not UTF-8 (Shift_JIS, GBK paths); overlong forms never.
    pub allow_non_utf8_path: bool,
    /// `X-HTTP-Method-Override` (and its aliases) and `_method` (query or form field) reach the
    /// upstream, and route selection and authorization use the overriding method.
    pub method_override: bool,
    /// WebSocket upgrades are forwarded (validated); other upgrades never are.
    pub websocket: bool,
    /// `access_token` in the query is a bearer token (RFC 6750 §2.3); it is never forwarded.
    pub allow_query_token: bool,
}

impl Default for RequestRules {
    fn default() -> Self {
        RequestRules {
            strict_paths: false,
            allow_non_utf8_path: false,
            method_override: false,
            websocket: true,
            allow_query_token: false,
        }
    }
}

/// A token bucket: `requests` per `per`, up to `burst` at once, one bucket per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// `requests` (at least 1): tokens added per `per`.
    pub requests: u32,
    /// `per` (default 1 s): the refill period.
    pub per: Duration,
    /// `burst` (default `requests`): the bucket's size, what may be spent at once.
    pub burst: u32,
    /// `key` (default user): whose bucket a request takes from.
    pub key: RateKey,
}

/// Whose bucket a request takes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateKey {
    /// The verified user (or client, for a client's own token); the client address on public
    /// routes.
    User,
    /// The client address the core derives (socket peer, `X-Forwarded-For` only from
    /// `trusted_proxies`); IPv6 per /64.
    Client,
}

pub(super) fn resolve_all(
    r: &Resolver,
    raw: &[RawRoute],
    identity: &IdentityConfig,
    default_body_limit: u64,
) -> Result<Vec<RouteConfig>, ConfigError> {
    let mut routes: Vec<RouteConfig> = Vec::with_capacity(raw.len());
    for (i, raw_route) in raw.iter().enumerate() {
        let route = resolve(r, i, raw_route, identity, default_body_limit)?;
        if let Some((j, earlier)) = routes.iter().enumerate().find(|(_, e)| hides(e, &route)) {
            let what = if earlier.host == route.host && earlier.methods == route.methods {
                "is a duplicate of"
            } else {
                "can never match: every request it matches is taken first by"
            };
            return Err(r.err(
                format!("routes[{i}]"),
                format!(
                    "route `{}` {what} routes[{j}] `{}` (same host, prefix and methods)",
                    route.name, earlier.name
                ),
            ));
        }
        routes.push(route);
    }
    Ok(routes)
}

/// Session routes need the sign-in page (`dialects.oauth2.paths.signin`), and their own
/// limits may only shorten `[login]`'s: the session's stored expiry is `[login]`'s.
pub(super) fn check_sessions(
    r: &Resolver,
    routes: &[RouteConfig],
    login: &super::LoginConfig,
    signin: Option<&str>,
) -> Result<(), ConfigError> {
    for (i, route) in routes.iter().enumerate() {
        if !route.auth.reads_session() {
            continue;
        }
        if signin.is_none() {
            return Err(r.err(
                format!("routes[{i}].auth"),
                "a session route needs the sign-in page: enable [dialects.oauth2] and keep paths.signin",
            ));
        }
        if route
            .session
            .absolute
            .is_some_and(|ttl| ttl > login.session_ttl)
        {
            return Err(r.err(
                format!("routes[{i}].session_ttl"),
                "may only shorten login.session_ttl (a session ends at the latest then)",
            ));
        }
        if let (Some(route_idle), Some(idle)) = (route.session.idle, login.idle_timeout)
            && route_idle > idle
        {
            return Err(r.err(
                format!("routes[{i}].idle_timeout"),
                "may only shorten login.idle_timeout (a session idle that long has ended)",
            ));
        }
    }
    Ok(())
}

/// `upstream = "none"` routes only decide for an edge proxy: they need `[forward_auth]`.
pub(super) fn check_check_only(
    r: &Resolver,
    routes: &[RouteConfig],
    forward_auth: bool,
) -> Result<(), ConfigError> {
    match routes.iter().position(|route| route.upstream == Upstream::None) {
        Some(i) if !forward_auth => Err(r.err(
            format!("routes[{i}].upstream"),
            "\"none\" forwards nothing: such a route only decides for an edge proxy, which needs a [forward_auth] table",
        )),
        _ => Ok(()),
    }
}

/// True when `earlier` takes every request `later` could match (so `later` is dead config).
fn hides(earlier: &RouteConfig, later: &RouteConfig) -> bool {
    let host_covers = earlier.host.is_none() || earlier.host == later.host;
    let methods_cover = match (&earlier.methods, &later.methods) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(e), Some(l)) => l.iter().all(|m| e.contains(m)),
    };
    earlier.prefix == later.prefix && host_covers && methods_cover
}

fn resolve(
    r: &Resolver,
    i: usize,
    raw: &RawRoute,
    identity: &IdentityConfig,
    default_body_limit: u64,
) -> Result<RouteConfig, ConfigError> {
    let key = |field: &str| format!("routes[{i}].{field}");
    let prefix = resolve_prefix(&raw.prefix).map_err(|m| r.err(key("prefix"), m))?;
    let upstream = resolve_upstream(&raw.upstream).map_err(|m| r.err(key("upstream"), m))?;
    let ca_file = resolve_ca_file(r, i, raw, &upstream)?;
    let methods = resolve_methods(r, i, raw.methods.as_deref())?;
    let auth = resolve_auth(r, i, raw.auth.as_deref())?;
    Ok(RouteConfig {
        name: raw.name.clone().unwrap_or_else(|| prefix.clone()),
        host: raw
            .host
            .as_deref()
            .map(resolve_host)
            .transpose()
            .map_err(|m| r.err(key("host"), m))?,
        methods,
        upstream,
        ca_file,
        h2c: raw.h2c,
        strip_prefix: raw.strip_prefix,
        preserve_host: raw.preserve_host,
        timeout: r.duration(
            &key("timeout"),
            raw.timeout.as_deref(),
            Duration::from_secs(30),
        )?,
        max_body_bytes: r.size(
            &key("max_body_bytes"),
            raw.max_body_bytes.as_ref(),
            default_body_limit,
        )?,
        auth,
        user_header: r.header(
            &key("user_header"),
            raw.user_header.as_deref(),
            identity.user_header.as_str(),
        )?,
        group_header: r.header(
            &key("group_header"),
            raw.group_header.as_deref(),
            identity.group_header.as_str(),
        )?,
        scopes: raw.scopes.clone(),
        audiences: raw.audiences.clone(),
        allowed_groups: resolve_allowed_groups(r, i, &raw.allowed_groups, auth)?,
        impersonation: raw.impersonation.unwrap_or(true),
        identity_assertion: raw.identity_assertion,
        allow_clients: raw.allow_clients,
        rate_limit: match &raw.rate_limit {
            Some(limit) => Some(resolve_rate_limit(r, i, limit)?),
            None => None,
        },
        rules: resolve_rules(r, i, raw)?,
        session: resolve_session(r, i, raw, auth)?,
        prefix,
    })
}

/// What a session route may and may not say: a session carries no scopes, audience or client
/// (so `auth = "session"` refuses those keys; on `"session_or_bearer"` they apply to bearer
/// tokens), and only session routes take `session_ttl` / `idle_timeout`.
fn resolve_session(
    r: &Resolver,
    i: usize,
    raw: &RawRoute,
    auth: AuthPolicy,
) -> Result<RouteSessionLimits, ConfigError> {
    let key = |field: &str| format!("routes[{i}].{field}");
    if auth == AuthPolicy::Session {
        let bearer_only = [
            ("scopes", !raw.scopes.is_empty()),
            ("audiences", !raw.audiences.is_empty()),
            ("allow_clients", raw.allow_clients),
            ("allow_query_token", raw.allow_query_token),
        ];
        if let Some((field, _)) = bearer_only.iter().find(|(_, set)| *set) {
            return Err(r.err(
                key(field),
                "applies to bearer tokens, and a route with auth = \"session\" reads none; use auth = \"session_or_bearer\" or remove the key",
            ));
        }
    }
    let limits = RouteSessionLimits {
        absolute: raw
            .session_ttl
            .as_deref()
            .map(|text| r.duration(&key("session_ttl"), Some(text), Duration::ZERO))
            .transpose()?,
        idle: raw
            .idle_timeout
            .as_deref()
            .map(|text| r.duration(&key("idle_timeout"), Some(text), Duration::ZERO))
            .transpose()?,
    };
    let set = limits
        .absolute
        .map(|_| "session_ttl")
        .or(limits.idle.map(|_| "idle_timeout"));
    if let Some(field) = set
        && !auth.reads_session()
    {
        return Err(r.err(
            key(field),
            "only a session route (auth = \"session\" or \"session_or_bearer\") has sessions to limit",
        ));
    }
    for (field, value) in [
        ("session_ttl", limits.absolute),
        ("idle_timeout", limits.idle),
    ] {
        if value.is_some_and(|v| v.is_zero()) {
            return Err(r.err(key(field), "must be longer than 0 s"));
        }
    }
    Ok(limits)
}

/// The upstream's own CA (`ca_file`, https upstreams only) and the `h2c` check (http only).
fn resolve_ca_file(
    r: &Resolver,
    i: usize,
    raw: &RawRoute,
    upstream: &Upstream,
) -> Result<Option<PathBuf>, ConfigError> {
    let key = |field: &str| format!("routes[{i}].{field}");
    let ca_file = match (&raw.ca_file, upstream) {
        (None, _) => None,
        (Some(path), Upstream::Http { scheme, .. }) if *scheme == Scheme::HTTPS => {
            Some(r.path(path))
        }
        (Some(_), _) => return Err(r.err(key("ca_file"), "only an https upstream takes a ca_file")),
    };
    if raw.h2c && !matches!(upstream, Upstream::Http { scheme, .. } if *scheme == Scheme::HTTP) {
        return Err(r.err(
            key("h2c"),
            "h2c (HTTP/2 without TLS) needs an http:// upstream",
        ));
    }
    Ok(ca_file)
}

/// `methods`: absent means every method; an empty list is refused as dead config.
fn resolve_methods(
    r: &Resolver,
    i: usize,
    methods: Option<&[String]>,
) -> Result<Option<Vec<Method>>, ConfigError> {
    let key = |field: &str| format!("routes[{i}].{field}");
    let methods = match methods {
        None => None,
        Some([]) => {
            return Err(r.err(
                key("methods"),
                "an empty list matches nothing; omit the key to allow every method",
            ));
        }
        Some(list) => Some(
            list.iter()
                .map(|m| {
                    Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                        .map_err(|_| r.err(key("methods"), format!("`{m}` is not an HTTP method")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(methods)
}

/// `auth`: "authenticated" (the default), "public", "admin", "session" or "session_or_bearer".
fn resolve_auth(r: &Resolver, i: usize, auth: Option<&str>) -> Result<AuthPolicy, ConfigError> {
    let key = |field: &str| format!("routes[{i}].{field}");
    let auth = match auth {
        None | Some("authenticated") => AuthPolicy::Authenticated,
        Some("public") => AuthPolicy::Public,
        Some("admin") => AuthPolicy::Admin,
        Some("session") => AuthPolicy::Session,
        Some("session_or_bearer") => AuthPolicy::SessionOrBearer,
        Some(other) => {
            return Err(r.err(
                key("auth"),
                format!(
                    "`{other}` is not one of \"public\", \"authenticated\", \"admin\", \"session\", \"session_or_bearer\""
                ),
            ));
        }
    };
    Ok(auth)
}

/// `allowed_groups`: ids a forwarded group can be (not empty, no whitespace, comma or control
/// character, at most 256 bytes: what a verified group may be), each once, and only on routes
/// with an identity to check.
fn resolve_allowed_groups(
    r: &Resolver,
    i: usize,
    groups: &[RawGroup],
    auth: AuthPolicy,
) -> Result<Vec<String>, ConfigError> {
    let key = format!("routes[{i}].allowed_groups");
    if !groups.is_empty() && auth == AuthPolicy::Public {
        return Err(r.err(
            key,
            "a public route has no identity to check; remove the key or set auth = \"authenticated\"",
        ));
    }
    let mut allowed: Vec<String> = Vec::with_capacity(groups.len());
    for (n, RawGroup(group)) in groups.iter().enumerate() {
        let at = format!("{key}[{n}]");
        let fit = group.len() <= 256
            && !group
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ',');
        if group.is_empty() {
            return Err(r.err(at, "an empty string is not a group"));
        }
        if !fit {
            return Err(r.err(
                at,
                format!(
                    "`{}` can never be a forwarded group (longer than 256 bytes, or with whitespace, a comma or a control character)",
                    group.escape_debug()
                ),
            ));
        }
        if allowed.contains(group) {
            return Err(r.err(at, format!("`{group}` is listed twice")));
        }
        allowed.push(group.clone());
    }
    Ok(allowed)
}

/// The request-parsing rules: `path_parsing`, non-UTF-8 paths, method override, WebSocket
/// upgrades (on by default) and `access_token` in the query.
fn resolve_rules(r: &Resolver, i: usize, raw: &RawRoute) -> Result<RequestRules, ConfigError> {
    let key = |field: &str| format!("routes[{i}].{field}");
    Ok(RequestRules {
        strict_paths: match raw.path_parsing.as_deref() {
            None | Some("default") => false,
            Some("strict") => true,
            Some(other) => {
                return Err(r.err(
                    key("path_parsing"),
                    format!("`{other}` is not one of \"default\", \"strict\""),
                ));
            }
        },
        allow_non_utf8_path: raw.allow_non_utf8_path,
        method_override: raw.method_override,
        websocket: raw.websocket.unwrap_or(true),
        allow_query_token: raw.allow_query_token,
    })
}

fn resolve_rate_limit(
    r: &Resolver,
    i: usize,
    raw: &RawRateLimit,
) -> Result<RateLimitConfig, ConfigError> {
    let key = |field: &str| format!("routes[{i}].rate_limit.{field}");
    if raw.requests == 0 {
        return Err(r.err(key("requests"), "must be at least 1"));
    }
    let per = r.duration(&key("per"), raw.per.as_deref(), Duration::from_secs(1))?;
    if per.is_zero() {
        return Err(r.err(key("per"), "must be longer than 0s"));
    }
    let burst = raw.burst.unwrap_or(raw.requests);
    if burst == 0 {
        return Err(r.err(key("burst"), "must be at least 1"));
    }
    let rate_key = match raw.key.as_deref() {
        None | Some("user") => RateKey::User,
        Some("client") => RateKey::Client,
        Some(other) => {
            return Err(r.err(
                key("key"),
                format!("`{other}` is not one of \"user\", \"client\""),
            ));
        }
    };
    Ok(RateLimitConfig {
        requests: raw.requests,
        per,
        burst,
        key: rate_key,
    })
}

/// A prefix must be written in normal form, since it is compared against normalised paths.
fn resolve_prefix(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err(format!("`{text}` must start with `/`"));
    }
    let trimmed = if text.len() > 1 {
        text.trim_end_matches('/')
    } else {
        text
    };
    match crate::http::path::normalize(trimmed) {
        Ok(normal) if normal == trimmed => Ok(normal.into_owned()),
        Ok(normal) => Err(format!("`{text}` is not in normal form; write `{normal}`")),
        Err(e) => Err(format!("`{text}`: {e}")),
    }
}

fn resolve_upstream(text: &str) -> Result<Upstream, String> {
    match text {
        "builtin:echo" => return Ok(Upstream::Echo),
        "none" => return Ok(Upstream::None),
        _ => {}
    }
    let bad =
        || format!("`{text}` is not an http:// or https:// URL (or \"builtin:echo\", \"none\")");
    let uri: Uri = text.parse().map_err(|_| bad())?;
    let scheme = uri.scheme().cloned().ok_or_else(bad)?;
    if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
        return Err(bad());
    }
    let authority = uri.authority().cloned().ok_or_else(bad)?;
    if authority.host().is_empty() || authority.as_str().contains('@') {
        return Err(format!(
            "`{text}` needs a host and must not carry credentials"
        ));
    }
    if uri.query().is_some() {
        return Err(format!("`{text}` must not have a query string"));
    }
    Ok(Upstream::Http {
        scheme,
        authority,
        base_path: uri.path().trim_end_matches('/').to_owned(),
    })
}

pub(super) fn resolve_host(text: &str) -> Result<HostMatch, String> {
    let host = text.to_ascii_lowercase();
    let valid = |h: &str| {
        !h.is_empty()
            && h.split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    match host.strip_prefix("*.") {
        Some(rest) if valid(rest) => Ok(HostMatch::Suffix(format!(".{rest}"))),
        None if valid(&host) || host.parse::<std::net::IpAddr>().is_ok() => {
            Ok(HostMatch::Exact(host))
        }
        _ => Err(format!(
            "`{text}` is not a host name (no port, no scheme; `*.example.com` for subdomains)"
        )),
    }
}

#[cfg(test)]
impl RouteConfig {
    /// A route to `builtin:echo` with every other key at its default: the fixture of the
    /// unit tests that need a route (route table, authorization, forwarding).
    pub(crate) fn echo(name: &str, prefix: &str, auth: AuthPolicy) -> RouteConfig {
        RouteConfig {
            name: name.into(),
            host: None,
            prefix: prefix.into(),
            methods: None,
            upstream: Upstream::Echo,
            ca_file: None,
            h2c: false,
            strip_prefix: false,
            preserve_host: false,
            timeout: Duration::from_secs(1),
            max_body_bytes: 1,
            auth,
            user_header: HeaderName::from_static("user_id"),
            group_header: HeaderName::from_static("group_id"),
            scopes: vec![],
            audiences: vec![],
            allowed_groups: vec![],
            impersonation: true,
            identity_assertion: false,
            allow_clients: false,
            rate_limit: None,
            rules: Default::default(),
            session: RouteSessionLimits::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        assert_eq!(resolve_upstream("builtin:echo"), Ok(Upstream::Echo));
        let Ok(Upstream::Http {
            base_path,
            authority,
            ..
        }) = resolve_upstream("http://127.0.0.1:9000/base/")
        else {
            panic!("should parse");
        };
        assert_eq!(base_path, "/base");
        assert_eq!(authority.as_str(), "127.0.0.1:9000");
        assert!(resolve_upstream("ftp://x").is_err());
        assert!(resolve_upstream("not a url").is_err());
        assert!(resolve_upstream("http://u:p@host").is_err());
        assert!(resolve_upstream("http://host/?q=1").is_err());
        assert!(resolve_upstream("/relative").is_err());
    }

    #[test]
    fn prefixes_must_be_normal() {
        assert_eq!(resolve_prefix("/api/").as_deref(), Ok("/api"));
        assert_eq!(resolve_prefix("/").as_deref(), Ok("/"));
        assert!(resolve_prefix("api").is_err());
        assert!(resolve_prefix("/a/../b").is_err());
        assert!(resolve_prefix("/a//b").is_err());
    }

    #[test]
    fn hosts() {
        assert!(resolve_host("API.example.com").is_ok_and(|h| h.matches("api.example.com")));
        let wild = resolve_host("*.example.com").expect("wildcard");
        assert!(wild.matches("a.example.com"));
        assert!(!wild.matches("example.com"));
        assert!(!wild.matches("aexample.com"));
        assert!(resolve_host("example.com:8080").is_err());
        assert!(resolve_host("http://x").is_err());
    }
}
