//! Upstream OpenID Connect providers (issue 25): the relying-party half of "sign in with the
//! identity provider a company already has". Owns each provider's discovery document (fetched
//! on demand, cached, bounded, no redirects), its keys (a JWKS source of its own: a provider's
//! ID tokens never authenticate a proxied request, so its keys never enter the proxy's key
//! set), the authorization request (code flow, PKCE S256, `state`, `nonce`) and the redemption
//! of the code: token endpoint, ID token validation, UserInfo for missing claims.
//!
//! Who the person becomes locally (linking, provisioning, group and admin mapping) is the
//! grant engine's (`grant/federated.rs`); the pages are `dialects/login/federated.rs`.

pub mod claims;
mod discovery;
mod fetch;
mod id_token;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::{StatusCode, Uri};
use serde_json::Value;
use tokio::sync::Mutex;

pub use claims::Claims;
pub use discovery::{ClientAuth, Discovery};
pub use id_token::IdTokenError;

use crate::authn::jwks::JwksSource;
use crate::authn::keyset::KeySet;
use crate::config::{IssuerConfig, KeySource, ProviderConfig, SubjectMapping, UpstreamConfig};
use crate::outbound::{self, HttpClient};

/// How long a fetched discovery document is used before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// How long a document keeps serving while the provider cannot give a new one.
const DISCOVERY_STALE: Duration = Duration::from_secs(24 * 3600);

/// Why a sign-in at a provider did not give us a person.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// No (timely, complete) answer: the person is told the provider is not reachable.
    #[error("the provider's {what} is not reachable: {detail}")]
    Unreachable {
        /// Which call.
        what: &'static str,
        /// What happened.
        detail: String,
    },
    /// An answer we cannot use (a misconfiguration, or a provider that does not conform).
    #[error("the provider's {what} is not usable: {detail}")]
    Invalid {
        /// Which call.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The token endpoint refused the code (`error` of RFC 6749 §5.2).
    #[error("the provider's token endpoint refused the code: {0}")]
    TokenRefused(String),
    /// The ID token failed a check.
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    /// UserInfo spoke of another subject (Core §5.3.4).
    #[error("UserInfo's sub is not the ID token's")]
    UserInfoSubject,
}

impl ProviderError {
    fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        ProviderError::Invalid {
            what,
            detail: detail.into(),
        }
    }

    /// The provider is down or slow (as opposed to answering wrongly).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ProviderError::Unreachable { .. })
    }
}

/// What the authorization endpoint is sent.
pub struct AuthorizationRequest<'a> {
    /// Our callback URL for this provider.
    pub redirect_uri: &'a str,
    /// Binds the callback to the pending sign-in.
    pub state: &'a str,
    /// Binds the ID token to the pending sign-in.
    pub nonce: &'a str,
    /// The PKCE S256 challenge.
    pub challenge: &'a str,
}

/// A verified sign-in: the provider's subject and claims.
#[derive(Debug)]
pub struct Identity {
    /// The provider's `sub` for the person.
    pub subject: String,
    /// ID token claims, completed from UserInfo where the mapping needs more.
    pub claims: Claims,
}

/// The provider's JWKS source for one `jwks_uri`, and when it last loaded.
struct LoadedJwks {
    uri: Uri,
    source: Arc<JwksSource>,
    at: Option<Instant>,
}

/// One configured provider and what we keep of it.
pub struct Provider {
    config: ProviderConfig,
    client: HttpClient,
    upstream: UpstreamConfig,
    discovery: Mutex<Option<(Discovery, Instant)>>,
    keys: Arc<KeySet>,
    jwks: Mutex<Option<LoadedJwks>>,
}

impl Provider {
    /// A provider with its own HTTP client (its CA file, or the system roots).
    pub fn new(
        config: ProviderConfig,
        upstream: &UpstreamConfig,
    ) -> Result<Self, outbound::UpstreamSetupError> {
        let roots = match &config.ca_file {
            Some(path) => outbound::load_roots(path)?,
            None => outbound::native_roots(),
        };
        Ok(Self::with_roots(config, upstream, roots))
    }

    fn with_roots(
        config: ProviderConfig,
        upstream: &UpstreamConfig,
        roots: rustls::RootCertStore,
    ) -> Self {
        let client = outbound::build(upstream, outbound::tls_config(roots), false);
        Provider {
            config,
            client,
            upstream: upstream.clone(),
            discovery: Mutex::new(None),
            keys: Arc::new(KeySet::default()),
            jwks: Mutex::new(None),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// The discovery document fetched now: a sign-in starts only when the provider answers,
    /// so a person is not sent to a provider that is down (the page says so instead). Sign-ins
    /// are rare next to requests; one small GET each is cheap.
    pub async fn fresh_discovery(&self) -> Result<Discovery, ProviderError> {
        self.discovery_within(Duration::ZERO, Duration::ZERO).await
    }

    /// The discovery document: cached for an hour; refetched after that, the old one serving
    /// up to a day while the provider fails.
    pub async fn discovery(&self) -> Result<Discovery, ProviderError> {
        self.discovery_within(DISCOVERY_TTL, DISCOVERY_STALE).await
    }

    async fn discovery_within(
        &self,
        fresh: Duration,
        stale: Duration,
    ) -> Result<Discovery, ProviderError> {
        let mut cached = self.discovery.lock().await;
        if let Some((doc, at)) = cached.as_ref()
            && at.elapsed() < fresh
        {
            return Ok(doc.clone());
        }
        let url = discovery::url(&self.config.issuer)?;
        let fetched = fetch::call(
            &self.client,
            fetch::Call {
                what: "discovery document",
                uri: &url,
                form: None,
                authorization: None,
            },
            self.config.timeout,
        )
        .await
        .and_then(|answer| {
            if answer.status.is_success() {
                discovery::parse(&self.config, &answer.json)
            } else {
                Err(ProviderError::invalid(
                    "discovery document",
                    format!("answered {}", answer.status),
                ))
            }
        });
        match (fetched, cached.as_ref()) {
            (Ok(doc), _) => {
                *cached = Some((doc.clone(), Instant::now()));
                Ok(doc)
            }
            (Err(error), Some((doc, at))) if at.elapsed() < stale => {
                tracing::warn!(provider = %self.config.name, %error, "discovery refresh failed; using the last good document");
                Ok(doc.clone())
            }
            (Err(error), _) => Err(error),
        }
    }

    /// The authorization endpoint's URL for one sign-in.
    pub fn authorization_url(
        &self,
        discovery: &Discovery,
        request: &AuthorizationRequest<'_>,
    ) -> String {
        let endpoint = discovery.authorization_endpoint.to_string();
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", request.redirect_uri)
            .append_pair("scope", &self.config.scopes.join(" "))
            .append_pair("state", request.state)
            .append_pair("nonce", request.nonce)
            .append_pair("code_challenge", request.challenge)
            .append_pair("code_challenge_method", "S256");
        let separator = if endpoint.contains('?') { '&' } else { '?' };
        format!("{endpoint}{separator}{}", query.finish())
    }

    /// Redeems `code` at the token endpoint and verifies the ID token (its `nonce` must be
    /// `nonce`); completes the claims from UserInfo when the mapping needs one it lacks.
    pub async fn redeem(
        &self,
        discovery: &Discovery,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        nonce: &str,
    ) -> Result<Identity, ProviderError> {
        let (form, authorization) =
            self.token_request(discovery.client_auth, code, verifier, redirect_uri);
        let answer = fetch::call(
            &self.client,
            fetch::Call {
                what: "token endpoint",
                uri: &discovery.token_endpoint,
                form: Some(form),
                authorization,
            },
            self.config.timeout,
        )
        .await?;
        if answer.status != StatusCode::OK {
            let error = answer
                .json
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no error code");
            return Err(ProviderError::TokenRefused(format!(
                "{} {error}",
                answer.status.as_u16()
            )));
        }
        let text = |name: &str| answer.json.get(name).and_then(Value::as_str);
        let id_token = text("id_token")
            .ok_or_else(|| ProviderError::invalid("token endpoint", "no id_token in the answer"))?;
        if !text("token_type").is_some_and(|t| t.eq_ignore_ascii_case("bearer")) {
            return Err(ProviderError::invalid(
                "token endpoint",
                "token_type is not Bearer",
            ));
        }
        let access_token = text("access_token").map(str::to_owned);
        let mut claims = self.verify_id_token(discovery, id_token, nonce).await?;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if let (Some(endpoint), Some(token)) = (&discovery.userinfo_endpoint, access_token)
            && self.wants_more(&claims)
        {
            let extra = self.userinfo(endpoint, &token).await?;
            if extra.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(ProviderError::UserInfoSubject);
            }
            for (name, value) in extra {
                claims.entry(name).or_insert(value);
            }
        }
        Ok(Identity { subject, claims })
    }

    /// The token request's form and `Authorization` header (client authentication as the
    /// discovery document allows).
    fn token_request(
        &self,
        auth: ClientAuth,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> (String, Option<String>) {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_verifier", verifier);
        let mut authorization = None;
        match (auth, &self.config.client_secret) {
            (ClientAuth::Basic, Some(secret)) => {
                // RFC 6749 §2.3.1: both parts form-encoded before Basic.
                let encode = |text: &str| {
                    form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>()
                };
                let pair = format!("{}:{}", encode(&self.config.client_id), encode(&secret.0));
                authorization = Some(format!("Basic {}", STANDARD.encode(pair)));
            }
            (ClientAuth::Post, Some(secret)) => {
                form.append_pair("client_id", &self.config.client_id)
                    .append_pair("client_secret", &secret.0);
            }
            _ => {
                form.append_pair("client_id", &self.config.client_id);
            }
        }
        (form.finish(), authorization)
    }

    /// Does the mapping read a claim the ID token lacks?
    fn wants_more(&self, claims: &Claims) -> bool {
        let c = &self.config;
        let mut needed: Vec<&str> = Vec::new();
        if c.provision {
            needed.push(&c.login_claim);
        }
        if c.provision || c.link_by_email || !c.allowed.domains.is_empty() {
            needed.extend(["email", "email_verified"]);
        }
        if let Some(group) = &c.group {
            needed.push(&group.claim);
        }
        if let Some(admin) = &c.admin {
            needed.push(&admin.claim);
        }
        if let Some(rule) = &c.allowed.claim {
            needed.push(&rule.claim);
        }
        needed.iter().any(|name| !claims.contains_key(*name))
    }

    async fn userinfo(&self, endpoint: &Uri, token: &str) -> Result<Claims, ProviderError> {
        let answer = fetch::call(
            &self.client,
            fetch::Call {
                what: "UserInfo endpoint",
                uri: endpoint,
                form: None,
                authorization: Some(format!("Bearer {token}")),
            },
            self.config.timeout,
        )
        .await?;
        if !answer.status.is_success() {
            return Err(ProviderError::invalid(
                "UserInfo endpoint",
                format!("answered {}", answer.status),
            ));
        }
        let json_type = answer
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|t| t.starts_with("application/json"));
        if !json_type {
            return Err(ProviderError::invalid(
                "UserInfo endpoint",
                "the answer is not JSON",
            ));
        }
        Ok(answer.json)
    }

    async fn verify_id_token(
        &self,
        discovery: &Discovery,
        token: &str,
        nonce: &str,
    ) -> Result<Claims, ProviderError> {
        let header = id_token::header(token, &self.config)?;
        let kid = header.kid.clone();
        let source = self.jwks(discovery).await?;
        let known = match &kid {
            Some(kid) => self.keys.get(&self.config.issuer, kid).is_some(),
            None => !self.keys.kids(&self.config.issuer).is_empty(),
        };
        if !known {
            match &kid {
                Some(kid) => {
                    source.refresh_for_kid(kid).await;
                }
                None => {
                    if let Err(error) = source.load().await {
                        tracing::warn!(provider = %self.config.name, %error, "provider JWKS fetch failed");
                    }
                }
            }
        }
        Ok(id_token::verify(
            token,
            header,
            &self.keys,
            &self.config,
            nonce,
        )?)
    }

    /// The JWKS source for the document's `jwks_uri`, (re)loaded when new or older than its
    /// cache lifetime.
    async fn jwks(&self, discovery: &Discovery) -> Result<Arc<JwksSource>, ProviderError> {
        let mut slot = self.jwks.lock().await;
        let reuse = slot
            .as_ref()
            .filter(|loaded| loaded.uri == discovery.jwks_uri)
            .map(|loaded| (Arc::clone(&loaded.source), loaded.at));
        let (source, loaded_at) = match reuse {
            Some(found) => found,
            None => {
                let config = self.issuer_config(&discovery.jwks_uri);
                let source = JwksSource::new(config, &self.upstream, Arc::clone(&self.keys))
                    .map_err(|error| ProviderError::invalid("JWKS", error.to_string()))?;
                (Arc::new(source), None)
            }
        };
        if loaded_at.is_none_or(|at| at.elapsed() >= DISCOVERY_TTL) {
            match source.load().await {
                Ok(_) => {
                    *slot = Some(LoadedJwks {
                        uri: discovery.jwks_uri.clone(),
                        source: Arc::clone(&source),
                        at: Some(Instant::now()),
                    });
                }
                Err(error) if self.keys.kids(&self.config.issuer).is_empty() => {
                    return Err(ProviderError::Unreachable {
                        what: "JWKS",
                        detail: error.to_string(),
                    });
                }
                Err(error) => {
                    tracing::warn!(provider = %self.config.name, %error, "provider JWKS refresh failed; keeping the last keys");
                }
            }
        }
        Ok(source)
    }

    fn issuer_config(&self, jwks_uri: &Uri) -> IssuerConfig {
        IssuerConfig {
            issuer: self.config.issuer.clone(),
            source: KeySource::JwksUri {
                uri: jwks_uri.clone(),
                ca_file: self.config.ca_file.clone(),
            },
            algorithms: self.config.algorithms.clone(),
            audiences: vec![self.config.client_id.clone()],
            user_claim: "sub".to_owned(),
            group_claim: None,
            roles_claim: None,
            subjects: SubjectMapping::Prefix(format!("{}:", self.config.name)),
            trusted_for_delegation: false,
            accepted_types: Vec::new(),
            refresh_min_interval: Duration::from_secs(30),
            cache_min: Duration::from_secs(300),
            cache_max: Duration::from_secs(86_400),
            stale_max: DISCOVERY_STALE,
            fetch_timeout: self.config.timeout,
        }
    }
}

/// Every configured provider, by name.
#[derive(Default)]
pub struct Providers {
    list: Vec<Arc<Provider>>,
}

impl Providers {
    /// The providers of `configs`, each with its HTTP client.
    pub fn new(
        configs: &[ProviderConfig],
        upstream: &UpstreamConfig,
    ) -> Result<Self, outbound::UpstreamSetupError> {
        let list = configs
            .iter()
            .map(|c| Provider::new(c.clone(), upstream).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(Providers { list })
    }

    /// The providers of `configs` trusting no certificate at all (their CA file failed).
    pub fn new_untrusted(configs: &[ProviderConfig], upstream: &UpstreamConfig) -> Self {
        let list = configs
            .iter()
            .map(|c| {
                Arc::new(Provider::with_roots(
                    c.clone(),
                    upstream,
                    rustls::RootCertStore::empty(),
                ))
            })
            .collect();
        Providers { list }
    }

    /// The provider called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Provider>> {
        self.list.iter().find(|p| p.config.name == name)
    }

    /// All of them, in the file's order (the buttons' order).
    pub fn all(&self) -> &[Arc<Provider>] {
        &self.list
    }

    /// None configured.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}
