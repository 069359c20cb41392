//! What the `oauth2` dialect serves, described once ([`Served`]), and the two documents made
//! from that description: RFC 8414 authorization server metadata and OpenID Connect Discovery
//! 1.0. Nothing is advertised that the endpoints refuse: the same description tells the login
//! page which `response_mode`s it accepts, and `tests/oauth2/discovery.rs` walks every
//! advertised value against the endpoints.

use serde_json::{Map, Value, json};

use super::TOKEN_EXCHANGE;
use crate::config::Oauth2Config;
use crate::keyring::JWKS_PATH;

/// RFC 8414 §3: where OAuth 2 clients discover us.
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
/// OpenID Connect Discovery 1.0 §4.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// The grants the token endpoint serves. The implicit grant is not among them: RFC 9700
/// deprecates it, and the seed's `/open/implicit` keeps serving the clients that call it,
/// unadvertised.
pub const GRANT_TYPES: [&str; 5] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
    TOKEN_EXCHANGE,
];
/// The authorization endpoint's `response_mode`s for `response_type=code`.
pub const RESPONSE_MODES: [&str; 2] = ["query", "form_post"];
/// How clients authenticate at the token, revocation and introspection endpoints
/// (`none`: public clients, not at introspection).
pub const AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];
/// The scopes OpenID Connect defines that we release claims for.
pub const OPENID_SCOPES: [&str; 5] = ["openid", "profile", "email", "phone", "offline_access"];
/// Every claim an ID token or UserInfo may carry (`tokens::UserClaims` and the ID token's own).
const CLAIMS: [&str; 17] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "azp",
    "at_hash",
    "amr",
    "name",
    "preferred_username",
    "picture",
    "email",
    "email_verified",
    "phone_number",
    "gid",
];
/// `prompt` values the login page honours (`consent` and `select_account` are accepted too:
/// there is no consent screen and one account per session, so both are already satisfied).
pub const PROMPTS: [&str; 2] = ["none", "login"];

/// The endpoints and capabilities one configuration serves.
#[derive(Debug, Clone)]
pub struct Served {
    issuer: String,
    endpoints: Vec<(&'static str, String)>,
    openid: bool,
    /// The audiences of the routes: the resources (RFC 8707) tokens can be addressed to.
    protected_resources: Vec<String>,
}

impl Served {
    /// From the configuration; URLs under the configured issuer (never the request's Host).
    pub fn new(config: &Oauth2Config, issuer: &str) -> Self {
        let base = issuer.trim_end_matches('/');
        let openid = config.openid.as_ref();
        let mut endpoints = vec![("jwks_uri", format!("{base}{JWKS_PATH}"))];
        for (name, path) in [
            ("authorization_endpoint", &config.authorize_page),
            ("token_endpoint", &config.token),
            ("revocation_endpoint", &config.revoke),
            ("introspection_endpoint", &config.introspect),
            (
                "userinfo_endpoint",
                &openid.and_then(|o| o.userinfo.clone()),
            ),
            (
                "end_session_endpoint",
                &openid.and_then(|_| config.logout.clone()),
            ),
        ] {
            if let Some(path) = path {
                endpoints.push((name, format!("{base}{path}")));
            }
        }
        Served {
            issuer: issuer.to_owned(),
            endpoints,
            openid: openid.is_some(),
            protected_resources: Vec::new(),
        }
    }

    /// The resources the routes protect (their `audiences`), advertised as RFC 9728 §4's
    /// `protected_resources`: what a client may name in an RFC 8707 `resource` parameter.
    pub fn protecting(mut self, resources: Vec<String>) -> Self {
        self.protected_resources = resources;
        self
    }

    /// Whether OpenID Connect is served (discovery, ID tokens, UserInfo, end-session).
    pub fn openid(&self) -> bool {
        self.openid
    }

    /// The document: RFC 8414 §2 fields, plus OpenID Connect Discovery §3's when it is on
    /// (RFC 8414 §2 allows them; one document served at both paths cannot disagree with
    /// itself).
    pub fn document(&self) -> Value {
        let mut body = Map::new();
        body.insert("issuer".into(), self.issuer.clone().into());
        for (name, url) in &self.endpoints {
            body.insert((*name).into(), url.clone().into());
        }
        let authorizes = self.has("authorization_endpoint");
        let response_types: &[&str] = if authorizes { &["code"] } else { &[] };
        body.insert("response_types_supported".into(), json!(response_types));
        if authorizes {
            body.insert("response_modes_supported".into(), json!(RESPONSE_MODES));
            body.insert("code_challenge_methods_supported".into(), json!(["S256"]));
            // RFC 9207: every authorization response carries `iss`.
            body.insert(
                "authorization_response_iss_parameter_supported".into(),
                true.into(),
            );
        }
        if !self.protected_resources.is_empty() {
            body.insert(
                "protected_resources".into(),
                json!(self.protected_resources),
            );
        }
        if self.has("token_endpoint") {
            body.insert("grant_types_supported".into(), json!(GRANT_TYPES));
            body.insert(
                "token_endpoint_auth_methods_supported".into(),
                json!(AUTH_METHODS),
            );
        }
        if self.has("revocation_endpoint") {
            body.insert(
                "revocation_endpoint_auth_methods_supported".into(),
                json!(AUTH_METHODS),
            );
        }
        if self.has("introspection_endpoint") {
            body.insert(
                "introspection_endpoint_auth_methods_supported".into(),
                json!(["client_secret_basic", "client_secret_post"]),
            );
        }
        if self.openid {
            body.insert("scopes_supported".into(), json!(OPENID_SCOPES));
            body.insert("subject_types_supported".into(), json!(["public"]));
            body.insert(
                "id_token_signing_alg_values_supported".into(),
                json!(["RS256", "ES256"]),
            );
            body.insert("claims_supported".into(), json!(CLAIMS));
            body.insert("prompt_values_supported".into(), json!(PROMPTS));
            body.insert("claims_parameter_supported".into(), false.into());
            body.insert("request_parameter_supported".into(), false.into());
            body.insert("request_uri_parameter_supported".into(), false.into());
        }
        Value::Object(body)
    }

    fn has(&self, name: &str) -> bool {
        self.endpoints.iter().any(|(n, _)| *n == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implicit_is_served_but_never_advertised() {
        let path = |p: &str| Some(p.to_owned());
        let config = Oauth2Config {
            token: path("/oauth2/token"),
            password: None,
            client_credentials: None,
            refresh_token: None,
            authorize: None,
            revoke: path("/oauth2/revoke"),
            introspect: path("/oauth2/introspect"),
            authorize_page: path("/open/authorize/index"),
            implicit: path("/open/implicit"),
            logout: path("/open/logout"),
            signin: path("/open/signin"),
            access_ttl: None,
            refresh_ttl: None,
            token_format: crate::config::TokenFormat::Jwt,
            openid: Some(crate::config::OpenIdConfig {
                userinfo: path("/oauth2/userinfo"),
                id_token_ttl: std::time::Duration::from_secs(60),
                rsa_bits: 2048,
            }),
        };
        let served = Served::new(&config, "https://gw.example/");
        let doc = served.document();
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        let grants = doc["grant_types_supported"].as_array().expect("grants");
        assert!(!grants.iter().any(|g| g == "implicit"));
        assert_eq!(doc["issuer"], "https://gw.example/");
        assert_eq!(
            doc["userinfo_endpoint"],
            "https://gw.example/oauth2/userinfo"
        );
        assert_eq!(
            doc["end_session_endpoint"],
            "https://gw.example/open/logout"
        );
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    }
}
