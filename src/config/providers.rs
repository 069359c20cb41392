//! `[[login.providers]]`: upstream OpenID Connect providers a person may sign in at from the
//! login pages (issue 25). What is checked here is what can be checked without the network:
//! the issuer URL (https, or http on 127.0.0.1 for tests), the client secret's source, who may
//! sign in (a provider must restrict it), the claim mapping, and the ID token algorithms.

use std::time::Duration;

use hyper::Uri;
use jsonwebtoken::Algorithm;

use super::raw::RawProvider;
use super::{ConfigError, Resolver};

/// The default `max_session`: a provider-only user's sessions and tokens end within it.
pub const DEFAULT_MAX_SESSION: Duration = Duration::from_secs(12 * 3600);

/// One `[[login.providers]]` entry, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// URL-safe name: `/open/providers/<name>/…`.
    pub name: String,
    /// The button's text after "Sign in with".
    pub label: String,
    /// The exact issuer; discovery is at `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// Our client secret there (`None`: a public client, PKCE only).
    pub client_secret: Option<ClientSecret>,
    /// Requested scopes (always with `openid`).
    pub scopes: Vec<String>,
    /// Create a local user at the first sign-in.
    pub provision: bool,
    /// Link to an existing (non-admin) local user by a verified e-mail.
    pub link_by_email: bool,
    /// The claim naming a provisioned user's account (default `preferred_username`).
    pub login_claim: String,
    /// Group mapping; `None`: the group is never touched by sign-ins.
    pub group: Option<GroupMapping>,
    /// Admin mapping (off unless configured): the admin role follows this claim.
    pub admin: Option<ClaimMatch>,
    /// Who may sign in (at least one restriction is set).
    pub allowed: Allowed,
    /// Cap on sessions and tokens of users who only sign in through providers.
    pub max_session: Duration,
    /// Each call to the provider (discovery, token, UserInfo, JWKS).
    pub timeout: Duration,
    /// ID token algorithms accepted (never HMAC or `none`).
    pub algorithms: Vec<Algorithm>,
    /// Trust this CA file for the provider instead of the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// The issuer is `http://127.0.0.1:…` (tests only).
    pub insecure_loopback: bool,
}

/// A client secret: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(pub String);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// How a sign-in's claims give the local group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMapping {
    /// The claim read.
    pub claim: String,
    /// Claim value → group id, in the file's order; empty: the claim holds the number.
    pub map: Vec<(String, i64)>,
    /// The group when the claim is missing or maps to nothing.
    pub default: i64,
}

/// A claim that must hold one of some values (a string, or an array of strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMatch {
    /// The claim.
    pub claim: String,
    /// Any of these.
    pub values: Vec<String>,
}

/// Who may sign in through a provider: every restriction that is set must pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    /// `hd`, or the domain of a verified e-mail, is one of these (lower case).
    pub domains: Vec<String>,
    /// Entra ID's `tid` is one of these.
    pub tenants: Vec<String>,
    /// A claim that must hold one of some values.
    pub claim: Option<ClaimMatch>,
}

const DEFAULT_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl Resolver {
    pub(super) fn providers(
        &self,
        raw: &[RawProvider],
        login_pages: bool,
    ) -> Result<Vec<ProviderConfig>, ConfigError> {
        let mut providers: Vec<ProviderConfig> = Vec::with_capacity(raw.len());
        for (i, raw) in raw.iter().enumerate() {
            let provider = self.provider(i, raw)?;
            if !login_pages {
                return Err(self.err(
                    format!("login.providers[{i}]"),
                    "providers sign people in on the login pages: enable [dialects.oauth2]",
                ));
            }
            if providers.iter().any(|p| p.name == provider.name) {
                return Err(self.err(
                    format!("login.providers[{i}].name"),
                    format!("`{}` is used by another provider", provider.name),
                ));
            }
            providers.push(provider);
        }
        Ok(providers)
    }

    fn provider(&self, i: usize, raw: &RawProvider) -> Result<ProviderConfig, ConfigError> {
        let key = |field: &str| format!("login.providers[{i}].{field}");
        let name_ok = (1..=32).contains(&raw.name.len())
            && raw
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(self.err(key("name"), "1 to 32 of a-z, 0-9, - and _"));
        }
        let insecure_loopback = self.provider_issuer(&key("issuer"), raw)?;
        if raw.client_id.is_empty() {
            return Err(self.err(key("client_id"), "must not be empty"));
        }
        let client_secret = self.client_secret(&key, raw)?;
        let scopes = raw
            .scopes
            .clone()
            .unwrap_or_else(|| ["openid", "profile", "email"].map(str::to_owned).to_vec());
        if !scopes.iter().any(|s| s == "openid") {
            return Err(self.err(key("scopes"), "must contain \"openid\""));
        }
        let allowed = self.allowed(&key, raw)?;
        let group = match (&raw.group_claim, raw.group_map.is_empty()) {
            (Some(claim), _) => Some(GroupMapping {
                claim: claim.clone(),
                map: raw.group_map.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                default: raw.default_group.unwrap_or(0),
            }),
            (None, false) => return Err(self.err(key("group_map"), "needs group_claim")),
            (None, true) if raw.default_group.is_some() => {
                return Err(self.err(key("default_group"), "needs group_claim"));
            }
            (None, true) => None,
        };
        let admin = match (&raw.admin_claim, raw.admin_values.is_empty()) {
            (Some(claim), false) => Some(ClaimMatch {
                claim: claim.clone(),
                values: raw.admin_values.clone(),
            }),
            (Some(_), true) => {
                return Err(self.err(key("admin_values"), "name the values that mark an admin"));
            }
            (None, false) => return Err(self.err(key("admin_claim"), "admin_values needs it")),
            (None, true) => None,
        };
        let algorithms = match &raw.algorithms {
            None => DEFAULT_ALGORITHMS.to_vec(),
            Some(names) => self.algorithms(&key("algorithms"), names)?,
        };
        let max_session = self.duration(
            &key("max_session"),
            raw.max_session.as_deref(),
            DEFAULT_MAX_SESSION,
        )?;
        if max_session < Duration::from_secs(60) {
            return Err(self.err(key("max_session"), "must be at least 1m"));
        }
        Ok(ProviderConfig {
            name: raw.name.clone(),
            label: raw.label.clone().unwrap_or_else(|| raw.name.clone()),
            issuer: raw.issuer.clone(),
            client_id: raw.client_id.clone(),
            client_secret,
            scopes,
            provision: raw.provision,
            link_by_email: raw.link_by_email,
            login_claim: raw
                .login_claim
                .clone()
                .unwrap_or_else(|| "preferred_username".to_owned()),
            group,
            admin,
            allowed,
            max_session,
            timeout: self.duration(
                &key("timeout"),
                raw.timeout.as_deref(),
                Duration::from_secs(5),
            )?,
            algorithms,
            ca_file: raw.ca_file.as_deref().map(|p| self.path(p)),
            insecure_loopback,
        })
    }

    /// https with a host, no query or fragment; or, with `allow_insecure_loopback`, http on
    /// 127.0.0.1 (true then).
    fn provider_issuer(&self, key: &str, raw: &RawProvider) -> Result<bool, ConfigError> {
        let issuer = &raw.issuer;
        let uri: Uri = issuer
            .parse()
            .map_err(|_| self.err(key, format!("`{issuer}` is not a URL")))?;
        let host = uri.host().unwrap_or_default();
        if uri.query().is_some() || issuer.contains('#') || host.is_empty() {
            return Err(self.err(key, "an issuer is an https URL without query or fragment"));
        }
        if issuer.contains("{tenantid}")
            || issuer.contains("/common/")
            || issuer.ends_with("/common")
        {
            return Err(self.err(
                key,
                "Entra ID's /common issuer is a template, not an issuer: use the tenant issuer https://login.microsoftonline.com/<tenant id>/v2.0",
            ));
        }
        match uri.scheme_str() {
            Some("https") => Ok(false),
            Some("http") if raw.allow_insecure_loopback && host == "127.0.0.1" => Ok(true),
            Some("http") if raw.allow_insecure_loopback => Err(self.err(
                key,
                "allow_insecure_loopback allows http://127.0.0.1 only (for tests)",
            )),
            _ => Err(self.err(key, "providers are reached over https only")),
        }
    }

    fn client_secret(
        &self,
        key: &dyn Fn(&str) -> String,
        raw: &RawProvider,
    ) -> Result<Option<ClientSecret>, ConfigError> {
        let secret = match (&raw.client_secret_env, &raw.client_secret_file) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    key("client_secret_file"),
                    "set client_secret_env or client_secret_file, not both",
                ));
            }
            (Some(var), None) => std::env::var(var).map_err(|_| {
                self.err(
                    key("client_secret_env"),
                    format!("the environment variable {var} is not set (or not UTF-8)"),
                )
            })?,
            (None, Some(file)) => {
                let path = self.path(file);
                let text = std::fs::read_to_string(&path).map_err(|error| {
                    self.err(
                        key("client_secret_file"),
                        format!("cannot read {}: {error}", path.display()),
                    )
                })?;
                text.trim_end_matches(['\r', '\n']).to_owned()
            }
            (None, None) => return Ok(None),
        };
        if secret.is_empty() {
            let source = if raw.client_secret_env.is_some() {
                "client_secret_env"
            } else {
                "client_secret_file"
            };
            return Err(self.err(key(source), "the client secret is empty"));
        }
        Ok(Some(ClientSecret(secret)))
    }

    fn allowed(
        &self,
        key: &dyn Fn(&str) -> String,
        raw: &RawProvider,
    ) -> Result<Allowed, ConfigError> {
        let claim = match (&raw.required_claim, raw.required_values.is_empty()) {
            (Some(claim), false) => Some(ClaimMatch {
                claim: claim.clone(),
                values: raw.required_values.clone(),
            }),
            (Some(_), true) => {
                return Err(self.err(key("required_values"), "name the values required"));
            }
            (None, false) => {
                return Err(self.err(key("required_claim"), "required_values needs it"));
            }
            (None, true) => None,
        };
        if raw
            .allowed_domains
            .iter()
            .any(|d| d.is_empty() || d.contains('@'))
        {
            return Err(self.err(key("allowed_domains"), "domains like \"example.com\""));
        }
        let allowed = Allowed {
            domains: raw
                .allowed_domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            tenants: raw.allowed_tenants.clone(),
            claim,
        };
        if allowed.domains.is_empty() && allowed.tenants.is_empty() && allowed.claim.is_none() {
            return Err(self.err(
                key("allowed_domains"),
                "say who may sign in: allowed_domains, allowed_tenants or required_claim (without one, anyone with an account at the provider could sign in)",
            ));
        }
        Ok(allowed)
    }
}
