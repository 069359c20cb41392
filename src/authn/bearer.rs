//! The request side of authentication: find the bearer token, verify it (with one JWKS
//! refresh when an external issuer's `kid` is unknown), and hand back the principal.

use std::collections::HashMap;
use std::sync::Arc;

use hyper::HeaderMap;
use hyper::header::{self, HeaderName};
use tokio::sync::watch;

use super::jwks::{JwksError, JwksSource};
use super::keyset::KeySet;
use super::memo::TokenMemo;
use super::opaque::{OpaqueTokens, is_opaque};
use super::{AuthnError, IssuerPolicy, Principal, RequestDefect, Revocations, Verifier};
use crate::config::Config;

/// `typ` values of the access tokens we issue (RFC 9068; the `passport` dialect keeps `JWT`).
pub const OWN_ACCESS_TOKEN_TYPES: [&str; 2] = ["at+jwt", "JWT"];

/// The proxy's one entry into authentication: owns the [`Verifier`], the external issuers'
/// JWKS sources (so an unknown `kid` can trigger a refresh) and, when enabled, the opaque-token
/// resolver. Built once per configuration; shared behind an `Arc`.
pub struct Authenticator {
    verifier: Verifier,
    sources: HashMap<String, Arc<JwksSource>>,
    token_headers: Vec<HeaderName>,
    /// Resolves our opaque reference tokens; `None`: only JWTs are accepted.
    opaque: Option<Arc<OpaqueTokens>>,
}

impl Authenticator {
    /// `keys` is shared with whatever maintains our own keys (the keyring).
    pub fn new(
        config: &Config,
        keys: Arc<KeySet>,
        revocations: Arc<dyn Revocations>,
    ) -> Result<Self, JwksError> {
        let own = IssuerPolicy::own(&config.auth);
        let mut policies = vec![own];
        let mut sources = HashMap::new();
        for issuer in &config.issuers {
            policies.push(IssuerPolicy {
                issuer: issuer.issuer.clone(),
                algorithms: issuer.algorithms.clone(),
                audiences: issuer.audiences.clone(),
                accepted_types: issuer.accepted_types.clone(),
                user_claim: issuer.user_claim.clone(),
                group_claim: issuer.group_claim.clone(),
                roles_claim: issuer.roles_claim.clone(),
                subject_prefix: match &issuer.subjects {
                    crate::config::SubjectMapping::Local => None,
                    crate::config::SubjectMapping::Prefix(prefix) => Some(prefix.clone()),
                },
                delegation: issuer.trusted_for_delegation,
                require_client_id: false,
            });
            let source = JwksSource::new(issuer.clone(), &config.upstream, Arc::clone(&keys))?;
            sources.insert(issuer.issuer.clone(), Arc::new(source));
        }
        let leeway = config.auth.leeway.as_secs();
        Ok(Authenticator {
            verifier: Verifier::new(
                keys,
                policies,
                leeway,
                config.auth.token_cache_entries,
                revocations,
            ),
            sources,
            token_headers: config.auth.token_headers.clone(),
            opaque: None,
        })
    }

    /// Also accept our opaque reference tokens.
    pub fn with_opaque(mut self, opaque: Arc<OpaqueTokens>) -> Self {
        self.opaque = Some(opaque);
        self
    }

    /// The verified-JWT cache's counters, for `/metrics`.
    pub fn cache_stats(&self) -> super::CacheStats {
        self.verifier.cache_stats()
    }

    /// Each external issuer's key-set refresh counts.
    pub fn issuer_stats(&self) -> Vec<(String, super::KeySetStats)> {
        let mut stats: Vec<_> = self
            .sources
            .iter()
            .map(|(issuer, source)| (issuer.clone(), source.stats()))
            .collect();
        stats.sort_by(|a, b| a.0.cmp(&b.0));
        stats
    }

    /// The configured headers besides `Authorization` that may carry the token; the proxy
    /// strips them before forwarding.
    pub fn token_headers(&self) -> &[HeaderName] {
        &self.token_headers
    }

    /// First load of every external issuer's keys. A failure is logged, not fatal: that
    /// issuer's tokens are refused until a refresh succeeds.
    pub async fn load_external_keys(&self) {
        for source in self.sources.values() {
            match source.load().await {
                Ok(_) => tracing::info!(issuer = source.issuer(), "external issuer keys loaded"),
                Err(error) => {
                    tracing::warn!(issuer = source.issuer(), %error, "cannot load external issuer keys yet")
                }
            }
        }
    }

    /// Background JWKS refreshers, until `stop`.
    pub fn spawn_refreshers(&self, stop: &watch::Receiver<bool>) {
        for source in self.sources.values() {
            tokio::spawn(Arc::clone(source).run_background(stop.clone()));
        }
    }

    /// The principal of the request's bearer token (from `Authorization` or a configured
    /// token header), or why there is none.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Principal>, AuthnError> {
        self.authenticate_with(headers, None, None).await
    }

    /// [`Self::authenticate`], with the `access_token` query parameter of a route that accepts
    /// one (RFC 6750 §2.3; a token there and in a header is refused, §3.1), for a request of a
    /// client connection whose last token `memo` remembers ([`TokenMemo`]).
    pub async fn authenticate_with(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
        memo: Option<&TokenMemo>,
    ) -> Result<Arc<Principal>, AuthnError> {
        let token = match (extract_token(headers, &self.token_headers), query_token) {
            (Err(AuthnError::Missing), Some(token)) if !token.is_empty() => token,
            (Ok(_), Some(_)) => {
                return Err(RequestDefect::TwoTokens.into());
            }
            (result, _) => result?,
        };
        if let Some(opaque) = self.opaque.as_ref().filter(|_| is_opaque(token)) {
            return opaque.resolve(token, memo).await;
        }
        match self.verifier.verify_on(token, memo) {
            Err(AuthnError::UnknownKey { issuer, kid }) => match self.sources.get(&issuer) {
                // Boxed: a JWKS fetch is rare and its future large.
                Some(source) if Box::pin(source.refresh_for_kid(&kid)).await => {
                    self.verifier.verify(token)
                }
                _ => Err(AuthnError::UnknownKey { issuer, kid }),
            },
            other => other,
        }
    }
}

/// Finds the bearer token: `Authorization: Bearer …` or one of the configured headers (the
/// `app` dialect's clients send `access-token`). A token in two places is refused (RFC 6750 §2).
pub fn extract_token<'a>(
    headers: &'a HeaderMap,
    token_headers: &[HeaderName],
) -> Result<&'a str, AuthnError> {
    let mut found: Option<&str> = None;
    let mut offer = |token: &'a str| match found {
        Some(_) => Err(AuthnError::from(RequestDefect::TwoTokens)),
        None => {
            found = Some(token);
            Ok(())
        }
    };
    for value in headers.get_all(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| RequestDefect::MalformedAuthorization)?;
        let Some((scheme, rest)) = value.split_once(' ') else {
            continue;
        };
        if scheme.eq_ignore_ascii_case("bearer") {
            let token = rest.trim_start_matches(' ');
            if token.is_empty() || !all_token68(token.as_bytes()) {
                return Err(RequestDefect::MalformedAuthorization.into());
            }
            offer(token)?;
        }
    }
    for name in token_headers {
        for value in headers.get_all(name) {
            let token = value
                .to_str()
                .map_err(|_| RequestDefect::MalformedTokenHeader)?
                .trim();
            if !token.is_empty() {
                offer(token)?;
            }
        }
    }
    found.ok_or(AuthnError::Missing)
}

/// Every byte is an RFC 7235 token68 character. It runs over every byte of every token, so
/// eight bytes are looked up per branch instead of one.
fn all_token68(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        if !chunk
            .iter()
            .fold(true, |ok, &b| ok & TOKEN68[usize::from(b)])
        {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| TOKEN68[usize::from(b)])
}

/// RFC 7235 token68 characters, as a table: the check runs over every byte of every token.
static TOKEN68: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=');
        i += 1;
    }
    table
};
