//! OpenID Connect's part of the engine: the ID token of a code or refresh grant with scope
//! `openid` (OpenID Connect Core §3.1.3.3, §12.2), UserInfo (§5.3), the `id_token_hint` of
//! RP-initiated logout, and the browser origins CORS allows (registered redirect URIs').
//!
//! One claim mapping ([`UserClaims::of`]) serves ID tokens and UserInfo, so they never differ.

use std::time::Duration;

use super::{Engine, Grant, GrantError, now};
pub use crate::authn::IdTokenHint;
use crate::store::{Client, KeyAlg, StoreError};
use crate::tokens::{self, IdTokenSpec, SignError, SigningKey, UserClaims};

/// The scope that asks for OpenID Connect.
pub const OPENID: &str = "openid";
/// How the person authenticated (RFC 8176): a password, on the login page.
const AMR_PASSWORD: &[&str] = &["pwd"];

impl Engine {
    /// The ID token to go with `grant`'s access token, or `None` when the dialect does not
    /// speak OpenID Connect (`ttl`), `openid` was not granted, the grant is not a person's, or
    /// (refresh) the family did not start at the login page (no `auth_time`).
    pub(super) async fn grant_id_token(
        &self,
        grant: &Grant,
        client: &Client,
        nonce: Option<&str>,
        auth_time: Option<i64>,
        ttl: Option<Duration>,
    ) -> Result<Option<String>, GrantError> {
        let (Some(user), Some(ttl), Some(auth_time)) = (grant.user(), ttl, auth_time) else {
            return Ok(None);
        };
        if !grant.scope.iter().any(|s| s == OPENID) {
            return Ok(None);
        }
        let alg = client.id_token_alg.unwrap_or(KeyAlg::Rs256);
        let key = self
            .keyring
            .signing_key(alg)
            .map_err(|e| GrantError::internal("choosing the ID token's signing key", e))?;
        let owned = OwnedIdToken {
            subject: user.id.to_string(),
            client_id: client.id.clone(),
            auth_time: u64::try_from(auth_time).ok(),
            nonce: nonce.map(str::to_owned),
            access_token: grant.access_token.clone(),
            claims: UserClaims::of(user, &grant.scope),
            ttl,
        };
        let issuer = self.config.issuer.clone();
        let at = u64::try_from(now()).unwrap_or(0);
        let sign = move || owned.sign(&issuer, &key, at);
        let signed = if alg == KeyAlg::Rs256 {
            // RSA signing takes milliseconds: the blocking pool, never an async worker.
            tokio::task::spawn_blocking(sign)
                .await
                .map_err(|e| GrantError::internal("signing the ID token", e))?
        } else {
            sign()
        };
        signed
            .map(Some)
            .map_err(|e| GrantError::internal("signing the ID token", e))
    }

    /// UserInfo (OpenID Connect Core §5.3): the person an access token with scope `openid`
    /// speaks for, and the claims its scopes release, as the store has them now.
    pub async fn userinfo(&self, token: &str) -> Result<UserInfo, UserInfoError> {
        let principal = self
            .own_token(token)
            .await
            .map_err(UserInfoError::Failed)?
            .ok_or(UserInfoError::InvalidToken(
                "the access token is invalid, expired or revoked",
            ))?;
        // A client's own token (`client:<id>`) speaks for nobody.
        let Ok(user_id) = principal.subject.parse::<i64>() else {
            return Err(UserInfoError::InvalidToken(
                "the access token does not speak for a person",
            ));
        };
        if !principal.scopes.iter().any(|s| s == OPENID) {
            return Err(UserInfoError::InsufficientScope);
        }
        // A token addressed to other APIs (RFC 8707) is theirs: one of them must not be able
        // to replay it here to read the person's claims. Unaddressed tokens, or tokens that
        // name us (the issuer) among their resources, are UserInfo's.
        let issuer = self.config.issuer.trim_end_matches('/');
        let mut resources = principal
            .audiences
            .iter()
            .filter(|aud| Some(*aud) != principal.client_id.as_ref());
        let addressed = resources.clone().next().is_some();
        if addressed && !resources.any(|aud| aud.trim_end_matches('/') == issuer) {
            return Err(UserInfoError::InvalidToken(
                "the access token is addressed to another API",
            ));
        }
        let user = match self.store.user(user_id).await {
            Ok(user) if !user.disabled => user,
            Ok(_) | Err(StoreError::NotFound { .. }) => {
                return Err(UserInfoError::InvalidToken(
                    "the account is disabled or gone",
                ));
            }
            Err(e) => {
                return Err(UserInfoError::Failed(GrantError::internal(
                    "reading the user",
                    e,
                )));
            }
        };
        Ok(UserInfo {
            subject: user.id.to_string(),
            claims: UserClaims::of(&user, &principal.scopes),
        })
    }

    /// RP-initiated logout's `id_token_hint`: an ID token we signed, expired or not.
    pub fn id_token_hint(&self, token: &str) -> Option<IdTokenHint> {
        self.verifier.id_token_hint(token, &self.config.issuer)
    }

    /// The origins (`scheme://host[:port]`) of every client's registered redirect URIs: the
    /// browser applications CORS lets read our answers.
    pub async fn browser_origins(&self) -> Result<Vec<String>, GrantError> {
        let clients = self
            .store
            .clients()
            .await
            .map_err(|e| GrantError::internal("listing the clients", e))?;
        let mut origins: Vec<String> = clients
            .iter()
            .flat_map(|c| c.redirect_uris.iter())
            .filter_map(|uri| origin_of(uri))
            .collect();
        origins.sort();
        origins.dedup();
        Ok(origins)
    }
}

/// An ID token's facts, owned, so RSA signing can move to the blocking pool.
struct OwnedIdToken {
    subject: String,
    client_id: String,
    auth_time: Option<u64>,
    nonce: Option<String>,
    access_token: String,
    claims: UserClaims,
    ttl: Duration,
}

impl OwnedIdToken {
    fn sign(&self, issuer: &str, key: &SigningKey, at: u64) -> Result<String, SignError> {
        let spec = IdTokenSpec {
            subject: &self.subject,
            client_id: &self.client_id,
            auth_time: self.auth_time,
            nonce: self.nonce.as_deref(),
            access_token: Some(&self.access_token),
            amr: AMR_PASSWORD,
            claims: &self.claims,
            ttl: self.ttl,
        };
        tokens::issue_id_token(issuer, key, &spec, at)
    }
}

/// `https://app.example:8443/cb?x` → `https://app.example:8443`; `None` for URIs without an
/// authority (custom schemes of native apps, which CORS does not concern).
pub fn origin_of(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let mut authority = authority.to_ascii_lowercase();
    // Browsers send the origin without the scheme's default port.
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    if authority.ends_with(default_port) {
        authority.truncate(authority.len() - default_port.len());
    }
    Some(format!("{scheme}://{authority}"))
}

/// The person UserInfo describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// `sub`: the same as in the ID token and the access token.
    pub subject: String,
    /// What the token's scopes release.
    pub claims: UserClaims,
}

/// Why UserInfo refused (RFC 6750 §3.1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserInfoError {
    /// 401 `invalid_token`.
    #[error("{0}")]
    InvalidToken(&'static str),
    /// 403 `insufficient_scope`: the token was not granted `openid`.
    #[error("the access token was not granted the openid scope")]
    InsufficientScope,
    /// The store failed (503/500 by its disposition).
    #[error(transparent)]
    Failed(GrantError),
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origins_of_redirect_uris() {
        assert_eq!(
            origin_of("https://App.example:8443/cb?x=1").as_deref(),
            Some("https://app.example:8443")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:3000").as_deref(),
            Some("http://127.0.0.1:3000")
        );
        assert_eq!(
            origin_of("https://app.example:443/cb").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(
            origin_of("http://app.example:80").as_deref(),
            Some("http://app.example")
        );
        assert_eq!(origin_of("com.example.app:/oauth"), None);
        assert_eq!(origin_of("https://user@evil/cb"), None);
    }
}
