//! The `authorization_code` grant (RFC 6749 §4.1) with PKCE (RFC 7636): S256 only (`plain`
//! is refused), required for public clients. The code is bound to its client, its redirect URI
//! and its challenge; [`crate::store::Store::take_code`] makes it single use, and a replay
//! revokes what the first use issued (recorded with it by `issue_for_code`).

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use super::client_auth::require;
use super::{Engine, Grant, GrantError, IssueOptions, Subject, now, resource, scope};
use crate::store::{Client, GrantType, NewCode, NewRefresh, StoreError, TakenCode};

const BAD_CODE: &str = "the authorization code is invalid, expired or already used";

/// An authorization request the login page approved for `user_id` (issue 7 builds it).
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The client the code is for (only it may redeem it).
    pub client_id: String,
    /// The person who logged in.
    pub user_id: i64,
    /// As the request named it; `None`: the client's single registered URI applies.
    pub redirect_uri: Option<String>,
    /// The scopes granted ([`Engine::check_authorization`](super::Engine::check_authorization)).
    pub scope: Option<Vec<String>>,
    /// PKCE (RFC 7636): required for public clients, and only `S256` is accepted.
    pub code_challenge: Option<String>,
    /// `S256`; absent or `plain` is refused.
    pub code_challenge_method: Option<String>,
    /// OpenID Connect: the request's `nonce`, returned in the ID token the code yields.
    pub nonce: Option<String>,
    /// When the person authenticated (the ID token's `auth_time`).
    pub auth_time: Option<i64>,
    /// RFC 8707 resources the authorization request named (checked by
    /// [`Engine::check_authorization`](super::Engine::check_authorization)).
    pub resources: Vec<String>,
}

/// The code half of a token request.
pub(super) struct Exchange<'a> {
    pub code: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub verifier: Option<&'a str>,
    /// RFC 8707 at the token endpoint: within what the authorization request named.
    pub resources: &'a [String],
}

/// RFC 7636 §4.1 verifier syntax: 43–128 characters of `A-Z a-z 0-9 - . _ ~`.
fn verifier_syntax_ok(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Does `verifier` match an S256 `challenge`? Constant time in the challenge.
pub fn verify_pkce(verifier: &str, challenge: &str) -> bool {
    if !verifier_syntax_ok(verifier) {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

pub(super) fn check_challenge(
    client: &Client,
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<(), GrantError> {
    match (challenge, method) {
        (None, None) if client.public => Err(GrantError::request(
            "PKCE (code_challenge with method S256) is required for public clients",
        )),
        (None, None) => Ok(()),
        (None, Some(_)) => Err(GrantError::request(
            "code_challenge_method without code_challenge",
        )),
        // RFC 7636 §4.3: no method means `plain`.
        (Some(_), None | Some("plain")) => Err(GrantError::request(
            "code_challenge_method must be S256; plain is not accepted",
        )),
        (Some(c), Some("S256")) if c.len() == 43 && URL_SAFE_NO_PAD.decode(c).is_ok() => Ok(()),
        (Some(_), Some("S256")) => Err(GrantError::request(
            "code_challenge must be the 43-character base64url SHA-256 of the verifier",
        )),
        (Some(_), Some(_)) => Err(GrantError::request("code_challenge_method must be S256")),
    }
}

impl Engine {
    /// Creates a code for an approved authorization request; returns it once. Refuses a
    /// client not registered for the code grant, a redirect URI not registered exactly, scopes
    /// beyond the registration, and any PKCE but S256 (required for public clients).
    pub async fn issue_code(&self, request: AuthorizationRequest) -> Result<String, GrantError> {
        let client = match self.store.client(&request.client_id).await {
            Ok(client) => client,
            Err(e @ StoreError::NotFound { .. }) => {
                return Err(GrantError::InvalidClient { source: Some(e) });
            }
            Err(e) => return Err(GrantError::internal("looking up the client", e)),
        };
        require(&client, GrantType::AuthorizationCode)?;
        match &request.redirect_uri {
            Some(uri) if !client.redirect_uris.contains(uri) => {
                return Err(GrantError::request(
                    "redirect_uri is not registered for this client",
                ));
            }
            None if client.redirect_uris.len() != 1 => {
                return Err(GrantError::request(
                    "redirect_uri is required: the client has several registered",
                ));
            }
            _ => {}
        }
        let challenge = request.code_challenge.as_deref();
        check_challenge(&client, challenge, request.code_challenge_method.as_deref())?;
        let scope = scope::grant(request.scope.as_deref(), &client.scopes)?;
        let new = NewCode {
            client_id: client.id.clone(),
            user_id: request.user_id,
            redirect_uri: request.redirect_uri,
            scope: scope.join(" "),
            pkce_challenge: request.code_challenge,
            pkce_method: request.code_challenge_method,
            nonce: request.nonce,
            auth_time: request.auth_time,
            resources: request.resources,
            ttl: self.config.code_ttl,
        };
        self.store
            .create_code(new, now())
            .await
            .map_err(|e| GrantError::internal("storing the code", e))
    }

    pub(super) async fn authorization_code(
        &self,
        client: &Client,
        exchange: Exchange<'_>,
        options: &IssueOptions,
    ) -> Result<Grant, GrantError> {
        require(client, GrantType::AuthorizationCode)?;
        // A resource the client may not use is refused before the code is spent.
        if options.resource_indicators {
            resource::registered(client, exchange.resources)?;
        }
        let taken = match self.store.take_code(exchange.code, now()).await {
            Ok(taken) => taken,
            Err(error) => {
                // A second use revoked what the first one issued.
                if matches!(error, StoreError::Replayed { .. }) {
                    self.reload_revocations().await;
                }
                return Err(GrantError::from_store(BAD_CODE, error));
            }
        };
        check_binding(client, &taken, &exchange)?;
        let user = self
            .store
            .user(taken.user_id)
            .await
            .map_err(|e| GrantError::from_store(BAD_CODE, e))?;
        if user.disabled {
            return Err(GrantError::grant("the account is disabled"));
        }
        let user_id = user.id;
        let scopes = scope::parse(&taken.scope);
        // RFC 8707 §2.2: the refresh family keeps every resource authorized; this access
        // token may be for fewer.
        let (authorized, resources) = if !options.resource_indicators {
            (Vec::new(), Vec::new())
        } else if taken.resources.is_empty() {
            let resolved = resource::resolve(client, exchange.resources)?;
            (resolved.clone(), resolved)
        } else {
            let narrowed = resource::narrow(client, exchange.resources, &taken.resources)?;
            (taken.resources.clone(), narrowed)
        };
        let cap = self.provider_cap(&user, taken.auth_time).await?;
        let mut decision = self.decision(client, Subject::User(Box::new(user)), scopes, options);
        decision.resources = resources;
        decision.cap(cap)?;
        let refresh = self.new_refresh(&decision, user_id).map(|new| NewRefresh {
            auth_time: taken.auth_time,
            resources: authorized,
            ..new
        });
        let mut grant = self.sign(decision).await?;
        let id_token = self
            .grant_id_token(
                &grant,
                client,
                taken.nonce.as_deref(),
                taken.auth_time,
                options.id_token_ttl,
            )
            .await?;
        grant.id_token = id_token;
        let access = grant.access_link();
        // The refresh token and the record of what the code issued land together; a replay
        // that raced us leaves nothing issued and the access token denied.
        match self
            .store
            .issue_for_code(&taken, refresh, access, now())
            .await
        {
            Ok(refresh) => {
                grant.refresh_token = refresh.map(|r| r.token);
                Ok(grant)
            }
            Err(error @ StoreError::Replayed { .. }) => {
                self.reload_revocations().await;
                Err(GrantError::from_store(BAD_CODE, error))
            }
            Err(error) => Err(GrantError::internal("issuing the refresh token", error)),
        }
    }
}

/// The code was taken; it must have been issued to this client, for this redirect URI, with a
/// challenge this verifier answers. Any failure burns the code (it is not given back).
fn check_binding(
    client: &Client,
    code: &TakenCode,
    exchange: &Exchange<'_>,
) -> Result<(), GrantError> {
    if code.client_id != client.id {
        return Err(GrantError::grant(
            "the authorization code was issued to another client",
        ));
    }
    let redirect_ok = match (&code.redirect_uri, exchange.redirect_uri) {
        (Some(bound), Some(given)) => bound == given,
        (Some(_), None) => false,
        // Bound to the client's single registered URI; naming it is fine, naming another not.
        (None, Some(given)) => {
            client.redirect_uris.len() == 1
                && client.redirect_uris.first().map(String::as_str) == Some(given)
        }
        (None, None) => true,
    };
    if !redirect_ok {
        return Err(GrantError::grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (
        &code.pkce_challenge,
        code.pkce_method.as_deref(),
        exchange.verifier,
    ) {
        (Some(challenge), Some("S256"), Some(verifier)) if verify_pkce(verifier, challenge) => {
            Ok(())
        }
        (Some(_), Some("S256"), Some(_)) => Err(GrantError::grant(
            "code_verifier does not match the code challenge",
        )),
        (Some(_), Some("S256"), None) => Err(GrantError::grant("code_verifier is required")),
        (Some(_), _, _) => Err(GrantError::grant(
            "only the S256 code challenge method is accepted",
        )),
        (None, _, Some(_)) => Err(GrantError::grant(
            "code_verifier sent, but the code has no challenge",
        )),
        (None, _, None) if client.public => {
            Err(GrantError::grant("PKCE is required for public clients"))
        }
        (None, _, None) => Ok(()),
    }
}
