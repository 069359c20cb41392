//! What the file says: serde structs mirroring `gateway.toml` one to one. Every struct rejects
//! unknown keys; values stay as written (strings for durations, sizes, URLs) and are turned into
//! typed values by `config.rs`, which knows the key path to blame.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    pub tls: RawTls,
    pub admin: Option<RawAdmin>,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub upstream: RawUpstream,
    #[serde(default)]
    pub identity: RawIdentity,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub issuers: Vec<RawIssuer>,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub tokens: RawTokens,
    #[serde(default)]
    pub dialects: RawDialects,
    #[serde(default)]
    pub users: RawUsers,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub login: RawLogin,
    pub forward_auth: Option<RawForwardAuth>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForwardAuth {
    pub enabled: Option<bool>,
    pub path: Option<String>,
    pub allow_from: Option<Vec<String>>,
    #[serde(default)]
    pub allowed_return_hosts: Vec<String>,
    pub browser_response: Option<String>,
    pub cookie_domain: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogin {
    pub session_ttl: Option<String>,
    pub idle_timeout: Option<String>,
    pub password_form: Option<bool>,
    #[serde(default)]
    pub providers: Vec<RawProvider>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    pub label: Option<String>,
    pub issuer: String,
    pub client_id: String,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<String>,
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub provision: bool,
    #[serde(default)]
    pub link_by_email: bool,
    pub login_claim: Option<String>,
    pub group_claim: Option<String>,
    #[serde(default)]
    pub group_map: std::collections::BTreeMap<String, i64>,
    pub default_group: Option<i64>,
    pub admin_claim: Option<String>,
    #[serde(default)]
    pub admin_values: Vec<String>,
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    #[serde(default)]
    pub allowed_tenants: Vec<String>,
    pub required_claim: Option<String>,
    #[serde(default)]
    pub required_values: Vec<String>,
    pub max_session: Option<String>,
    pub timeout: Option<String>,
    pub algorithms: Option<Vec<String>>,
    pub ca_file: Option<String>,
    #[serde(default)]
    pub allow_insecure_loopback: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub file: Option<String>,
}

/// A byte size written either as an integer or as a string with a unit.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawSize {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: String,
    pub plain_listen: Option<String>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub proxy_protocol: Option<bool>,
    pub worker_threads: Option<usize>,
    pub pid_file: Option<String>,
    pub tls_handshake_timeout: Option<String>,
    pub header_read_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub shutdown_grace: Option<String>,
    pub max_header_bytes: Option<RawSize>,
    pub max_body_bytes: Option<RawSize>,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: String,
    pub key: String,
    #[serde(default)]
    pub dev_self_signed: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<String>,
    pub level: Option<String>,
    pub access_log: Option<bool>,
    pub log_query: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub connect_timeout: Option<String>,
    pub pool_idle_timeout: Option<String>,
    pub pool_max_idle_per_host: Option<usize>,
    pub affinity_idle_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    pub user_header: Option<String>,
    pub group_header: Option<String>,
    pub impersonator_header: Option<String>,
    pub scope_header: Option<String>,
    pub assertion_header: Option<String>,
    pub client_header: Option<String>,
    #[serde(default)]
    pub strip_headers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Option<String>,
    pub host: Option<String>,
    pub prefix: String,
    pub methods: Option<Vec<String>>,
    pub upstream: String,
    pub ca_file: Option<String>,
    #[serde(default)]
    pub h2c: bool,
    #[serde(default)]
    pub strip_prefix: bool,
    #[serde(default)]
    pub preserve_host: bool,
    pub timeout: Option<String>,
    pub max_body_bytes: Option<RawSize>,
    pub auth: Option<String>,
    pub user_header: Option<String>,
    pub group_header: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub allowed_groups: Vec<RawGroup>,
    pub impersonation: Option<bool>,
    #[serde(default)]
    pub allow_clients: bool,
    #[serde(default)]
    pub identity_assertion: bool,
    pub rate_limit: Option<RawRateLimit>,
    pub path_parsing: Option<String>,
    #[serde(default)]
    pub allow_non_utf8_path: bool,
    #[serde(default)]
    pub method_override: bool,
    pub websocket: Option<bool>,
    #[serde(default)]
    pub allow_query_token: bool,
    pub session_ttl: Option<String>,
    pub idle_timeout: Option<String>,
}

/// One entry of a route's `allowed_groups`: an integer (our own group ids) or a string (an
/// external issuer's group, prefixed like its subjects: `"idp:7"`), kept as the text the group
/// is forwarded as (`7` and `"7"` are the same group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawGroup(pub String);

impl<'de> Deserialize<'de> for RawGroup {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Group;
        impl serde::de::Visitor<'_> for Group {
            type Value = RawGroup;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a group id: an integer, or a string like \"idp:7\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawGroup, E> {
                Ok(RawGroup(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawGroup, E> {
                Ok(RawGroup(v.to_string()))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawGroup, E> {
                Ok(RawGroup(v.to_owned()))
            }
        }
        deserializer.deserialize_any(Group)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub requests: u32,
    pub per: Option<String>,
    pub burst: Option<u32>,
    pub key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub url: Option<String>,
    pub max_connections: Option<u32>,
    pub key_secret_env: Option<String>,
    pub key_secret_file: Option<String>,
    pub password_hash_concurrency: Option<usize>,
    pub key_activation_delay: Option<String>,
    pub acquire_timeout: Option<String>,
    pub statement_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUsers {
    pub sql: Option<RawUsersSql>,
}

/// `[users.sql]`: a legacy users table owned by another application.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUsersSql {
    pub url: String,
    pub query: String,
    pub update_query: Option<String>,
    pub max_connections: Option<u32>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub issuer: Option<String>,
    pub algorithms: Option<Vec<String>>,
    pub leeway: Option<String>,
    pub token_headers: Option<Vec<String>>,
    pub token_cache_entries: Option<usize>,
    pub refresh_interval: Option<String>,
    pub max_staleness: Option<String>,
    pub forward_authorization: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    pub issuer: String,
    pub jwks_uri: Option<String>,
    pub ca_file: Option<String>,
    pub jwks_file: Option<String>,
    pub public_key_file: Option<String>,
    pub kid: Option<String>,
    pub algorithms: Vec<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub user_claim: Option<String>,
    pub group_claim: Option<String>,
    pub roles_claim: Option<String>,
    pub subject: Option<String>,
    pub subject_prefix: Option<String>,
    #[serde(default)]
    pub trusted_for_delegation: bool,
    #[serde(default)]
    pub accepted_types: Vec<String>,
    pub refresh_min_interval: Option<String>,
    pub cache_min: Option<String>,
    pub cache_max: Option<String>,
    pub stale_max: Option<String>,
    pub fetch_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokens {
    pub access_ttl: Option<String>,
    pub refresh_ttl: Option<String>,
    pub exchange_ttl: Option<String>,
    pub code_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDialects {
    pub oauth2: Option<RawOauth2>,
    pub passport: Option<RawPassport>,
    pub app: Option<RawApp>,
    pub mobile: Option<RawMobile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMobile {
    pub enabled: Option<bool>,
    pub path: Option<String>,
    pub access_ttl: Option<String>,
    pub refresh_ttl: Option<String>,
    pub token_format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    pub enabled: Option<bool>,
    pub access_ttl: Option<String>,
    pub encrypt_type: Option<i32>,
    pub storage_audience: Option<String>,
    pub push_audience: Option<String>,
    pub storage_secret_env: Option<String>,
    pub storage_secret_file: Option<String>,
    pub paths: Option<RawAppPaths>,
    pub token_format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAppPaths {
    pub id: Option<String>,
    pub login: Option<String>,
    pub user: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPassport {
    pub enabled: Option<bool>,
    pub path: Option<String>,
    pub access_ttl: Option<String>,
    pub refresh_ttl: Option<String>,
    pub login: Option<String>,
    pub rsa_bits: Option<u32>,
    pub token_format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOauth2 {
    pub enabled: Option<bool>,
    pub access_ttl: Option<String>,
    pub refresh_ttl: Option<String>,
    pub login_session_ttl: Option<String>,
    pub paths: Option<RawOauth2Paths>,
    pub token_format: Option<String>,
    pub openid: Option<RawOpenId>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpenId {
    pub enabled: Option<bool>,
    pub id_token_ttl: Option<String>,
    pub rsa_bits: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOauth2Paths {
    pub token: Option<String>,
    pub password: Option<String>,
    pub client_credentials: Option<String>,
    pub refresh_token: Option<String>,
    pub authorize: Option<String>,
    pub revoke: Option<String>,
    pub introspect: Option<String>,
    pub authorize_page: Option<String>,
    pub implicit: Option<String>,
    pub logout: Option<String>,
    pub signin: Option<String>,
    pub userinfo: Option<String>,
}
