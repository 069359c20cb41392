//! The token issuer: signs access tokens (RFC 9068 `at+jwt`) with an active key. Claims:
//! `iss`, `sub` (user id), `aud` (client id plus resource audiences), `exp`, `iat`, `nbf`,
//! `jti`, `client_id`, `scope`, `gid`, `roles`, and `act` (RFC 8693) when an admin acts for
//! someone. The verifier (`authn`) accepts exactly what this module produces.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::store::User;

/// `typ` of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// A private key ready to sign, bound to its `kid` and algorithm.
pub struct SigningKey {
    /// Goes into every token's header, so verifiers pick the matching public key.
    pub kid: String,
    /// The one algorithm this key signs with (the header's `alg`).
    pub alg: Algorithm,
    /// The private key; `Debug` never prints it.
    pub key: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// What a grant decided to put in the token.
#[derive(Debug, Clone, Default)]
pub struct AccessTokenSpec {
    /// `sub`: the user (or `client:<id>` for a client acting for itself).
    pub user_id: String,
    /// `gid`, when the user has a group.
    pub group_id: Option<i64>,
    /// `roles`, as the store has them at issue time (the proxy re-reads current ones).
    pub roles: Vec<String>,
    /// `client_id`, and the first `aud` entry.
    pub client_id: Option<String>,
    /// Further `aud` entries (resource audiences); the client id is not repeated.
    pub audiences: Vec<String>,
    /// RFC 8707 resources: when any, `aud` is exactly these (RFC 9068 §3), without the client
    /// id or `audiences`.
    pub resources: Vec<String>,
    /// Granted scopes: `scope` (standard) or `scopes` (Passport).
    pub scopes: Vec<String>,
    /// Lifetime: `exp` = now + this, in whole seconds.
    pub ttl: Duration,
    /// The admin acting as `user_id`, if any.
    pub actor: Option<String>,
    /// `typ` header; `None` means [`ACCESS_TOKEN_TYPE`].
    pub token_type: Option<&'static str>,
    /// Which claim layout to write.
    pub style: TokenStyle,
}

/// The shape of an access token. Both verify the same way on the proxy path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenStyle {
    /// RFC 9068: `typ` `at+jwt`, `aud` an array, `scope` a space-separated string.
    #[default]
    Standard,
    /// Laravel Passport's (seed 001): `typ` `JWT` and `jti` in the header, `aud` the client id
    /// as a string, `scopes` an array; plus `iss`, `client_id`, `gid`, `roles` for our proxy.
    Passport,
}

/// A signed access token and the facts the grant records about it (revocation keys on `jti`).
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWS, as the client receives it.
    pub token: String,
    /// The fresh random token id.
    pub jti: String,
    /// `iat`, Unix seconds.
    pub issued_at: u64,
    /// `exp`, Unix seconds.
    pub expires_at: u64,
}

/// Signing failed: the key does not fit its algorithm (a broken key row), never the claims.
#[derive(Debug, thiserror::Error)]
#[error("signing the token failed: {0}")]
pub struct SignError(#[from] jsonwebtoken::errors::Error);

#[derive(Serialize)]
struct Actor<'a> {
    sub: &'a str,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aud: Vec<&'a str>,
    exp: u64,
    iat: u64,
    nbf: u64,
    jti: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "String::is_empty")]
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gid: Option<i64>,
    roles: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<Actor<'a>>,
}

/// Signs `spec` as issuer `issuer` at time `now` (seconds since the epoch).
pub fn issue(
    issuer: &str,
    key: &SigningKey,
    spec: &AccessTokenSpec,
    now: u64,
) -> Result<IssuedToken, SignError> {
    let jti = uuid::Uuid::new_v4().simple().to_string();
    let expires_at = now + spec.ttl.as_secs();
    let mut aud: Vec<&str> = spec.client_id.iter().map(String::as_str).collect();
    aud.extend(
        spec.audiences
            .iter()
            .map(String::as_str)
            .filter(|a| Some(*a) != spec.client_id.as_deref()),
    );
    if !spec.resources.is_empty() {
        aud = spec.resources.iter().map(String::as_str).collect();
    }
    if spec.style == TokenStyle::Passport {
        return issue_passport(issuer, key, spec, now, jti, expires_at);
    }
    let claims = Claims {
        iss: issuer,
        sub: &spec.user_id,
        aud,
        exp: expires_at,
        iat: now,
        nbf: now,
        jti: &jti,
        client_id: spec.client_id.as_deref(),
        scope: spec.scopes.join(" "),
        gid: spec.group_id,
        roles: &spec.roles,
        act: spec.actor.as_deref().map(|sub| Actor { sub }),
    };
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    header.typ = Some(spec.token_type.unwrap_or(ACCESS_TOKEN_TYPE).to_owned());
    let token = jsonwebtoken::encode(&header, &claims, &key.key)?;
    Ok(IssuedToken {
        token,
        jti,
        issued_at: now,
        expires_at,
    })
}

#[derive(Serialize)]
struct PassportHeader<'a> {
    typ: &'static str,
    alg: Algorithm,
    jti: &'a str,
    kid: &'a str,
}

#[derive(Serialize)]
struct PassportClaims<'a> {
    aud: &'a str,
    jti: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
    sub: &'a str,
    scopes: &'a [String],
    iss: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gid: Option<i64>,
    roles: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<Actor<'a>>,
}

/// jsonwebtoken's `Header` has no `jti`, which Passport puts there: the header is built here
/// and only the signature comes from jsonwebtoken.
fn issue_passport(
    issuer: &str,
    key: &SigningKey,
    spec: &AccessTokenSpec,
    now: u64,
    jti: String,
    expires_at: u64,
) -> Result<IssuedToken, SignError> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = PassportHeader {
        typ: "JWT",
        alg: key.alg,
        jti: &jti,
        kid: &key.kid,
    };
    let claims = PassportClaims {
        aud: spec.client_id.as_deref().unwrap_or_default(),
        jti: &jti,
        iat: now,
        nbf: now,
        exp: expires_at,
        sub: &spec.user_id,
        scopes: &spec.scopes,
        iss: issuer,
        client_id: spec.client_id.as_deref(),
        gid: spec.group_id,
        roles: &spec.roles,
        act: spec.actor.as_deref().map(|sub| Actor { sub }),
    };
    let header = serde_json::to_vec(&header).map_err(|e| SignError(e.into()))?;
    let claims = serde_json::to_vec(&claims).map_err(|e| SignError(e.into()))?;
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key.key, key.alg)?;
    Ok(IssuedToken {
        token: format!("{message}.{signature}"),
        jti,
        issued_at: now,
        expires_at,
    })
}

/// What a scope releases about a person (OpenID Connect Core §5.4), the same for ID tokens and
/// UserInfo: `profile` → `name` (display name), `preferred_username` (account), `picture` (the
/// largest profile image); `email` → `email`, `email_verified` (the store's mail-verified
/// flag); `phone` → `phone_number` (no `phone_number_verified`: nothing verifies phones).
/// `gid` (a number, as in access tokens) always.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserClaims {
    /// `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `preferred_username`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// `picture`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `email_verified`, only with `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// `phone_number`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// `gid`: the user's group.
    pub gid: i64,
}

impl UserClaims {
    /// The claims `scopes` release about `user`.
    pub fn of(user: &User, scopes: &[String]) -> Self {
        let has = |scope: &str| scopes.iter().any(|s| s == scope);
        let mut claims = UserClaims {
            gid: user.group_id,
            ..UserClaims::default()
        };
        if has("profile") {
            let profile = &user.profile;
            claims.name = profile.display_name.clone();
            claims.preferred_username = Some(user.account.clone());
            claims.picture = [
                &profile.image_large,
                &profile.image_medium,
                &profile.image_small,
            ]
            .into_iter()
            .find_map(Clone::clone);
        }
        if has("email")
            && let Some(email) = &user.email
        {
            claims.email = Some(email.clone());
            claims.email_verified = Some(user.profile.mail_verified);
        }
        if has("phone") {
            claims.phone_number = user.phone.clone();
        }
        claims
    }
}

/// What an ID token (OpenID Connect Core §2) states.
#[derive(Debug, Clone)]
pub struct IdTokenSpec<'a> {
    /// `sub`: the user id.
    pub subject: &'a str,
    /// `aud` and `azp`: the client the token is for.
    pub client_id: &'a str,
    /// `auth_time`: when the person authenticated (kept across refreshes, §12.2).
    pub auth_time: Option<u64>,
    /// `nonce` of the authorization request (never on a refresh's ID token, §12.2).
    pub nonce: Option<&'a str>,
    /// The access token issued with it, for `at_hash`.
    pub access_token: Option<&'a str>,
    /// `amr` (RFC 8176 values).
    pub amr: &'a [&'a str],
    /// The person's claims the granted scopes release.
    pub claims: &'a UserClaims,
    /// `exp` = now + this.
    pub ttl: Duration,
}

#[derive(Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    azp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    at_hash: Option<String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    amr: &'a [&'a str],
    #[serde(flatten)]
    user: &'a UserClaims,
}

/// Signs an ID token. It has no `typ` (ID token validators such as Nimbus accept only `JWT` or
/// none, and the proxy's verifier accepts neither from us: our access tokens are `at+jwt`, or
/// `JWT` with Passport's claims) and no `client_id`, which the proxy requires of an access
/// token: an ID token never authenticates a proxied request. RS256 or ES256 only: `at_hash`
/// is defined by the hash of the signing algorithm, which EdDSA leaves ambiguous.
pub fn issue_id_token(
    issuer: &str,
    key: &SigningKey,
    spec: &IdTokenSpec<'_>,
    now: u64,
) -> Result<String, SignError> {
    if !matches!(key.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(SignError(
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into(),
        ));
    }
    let claims = IdClaims {
        iss: issuer,
        sub: spec.subject,
        aud: spec.client_id,
        exp: now + spec.ttl.as_secs(),
        iat: now,
        auth_time: spec.auth_time,
        nonce: spec.nonce,
        azp: spec.client_id,
        at_hash: spec.access_token.map(at_hash),
        amr: spec.amr,
        user: spec.claims,
    };
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    header.typ = None;
    Ok(jsonwebtoken::encode(&header, &claims, &key.key)?)
}

/// OpenID Connect Core §3.1.3.6: the left half of the SHA-256 of the access token (RS256 and
/// ES256 both hash with SHA-256), base64url.
pub fn at_hash(access_token: &str) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}

/// `typ` of identity assertions: never accepted as an access token.
pub const ASSERTION_TYPE: &str = "authgate-identity+jwt";

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    nbf: u64,
    jti: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    gid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<Actor<'a>>,
}

/// What an identity assertion states.
#[derive(Debug, Clone, Copy)]
pub struct Assertion<'a> {
    /// The route (upstream) it is meant for.
    pub audience: &'a str,
    /// `sub`: the user id as forwarded in the identity header.
    pub user_id: &'a str,
    /// `gid`: the group id as forwarded, if any.
    pub group_id: Option<&'a str>,
    /// The admin acting as `user_id`, if any.
    pub actor: Option<&'a str>,
}

/// A short-lived signed statement of the identity headers, for an upstream that wants to prove
/// they came from the gateway (verify with our JWKS, `typ` [`ASSERTION_TYPE`], `aud` = route).
pub fn issue_assertion(
    issuer: &str,
    key: &SigningKey,
    assertion: &Assertion<'_>,
    ttl: Duration,
    now: u64,
) -> Result<String, SignError> {
    let jti = uuid::Uuid::new_v4().simple().to_string();
    let claims = AssertionClaims {
        iss: issuer,
        sub: assertion.user_id,
        aud: assertion.audience,
        exp: now + ttl.as_secs(),
        iat: now,
        nbf: now,
        jti: &jti,
        gid: assertion.group_id,
        act: assertion.actor.map(|sub| Actor { sub }),
    };
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    header.typ = Some(ASSERTION_TYPE.to_owned());
    Ok(jsonwebtoken::encode(&header, &claims, &key.key)?)
}

/// `typ` of the `app` dialect's `store_token` and `push_token`: never an access token (the
/// verifier accepts only the types in `authn::bearer::OWN_ACCESS_TOKEN_TYPES`).
pub const STORE_TOKEN_TYPE: &str = "authgate-store+jwt";
/// `typ` of the `app` dialect's `push_token` (see [`STORE_TOKEN_TYPE`]).
pub const PUSH_TOKEN_TYPE: &str = "authgate-push+jwt";

/// A token for a companion service (storage, push) bound to one login session.
#[derive(Debug, Clone, Copy)]
pub struct SessionToken<'a> {
    /// [`STORE_TOKEN_TYPE`] or [`PUSH_TOKEN_TYPE`].
    pub token_type: &'static str,
    /// `aud`: the companion service.
    pub audience: &'a str,
    /// `sub`: the session's user.
    pub user_id: &'a str,
    /// The session (the access token's `jti`), so the service can tie requests to it.
    pub session: &'a str,
    /// The device a push token is bound to.
    pub device: Option<&'a str>,
    /// `exp`, Unix seconds (the session's end, not a fixed lifetime).
    pub expires_at: u64,
}

#[derive(Serialize)]
struct SessionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    nbf: u64,
    jti: &'a str,
    sid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_guid: Option<&'a str>,
}

/// Signs a [`SessionToken`].
pub fn issue_session_token(
    issuer: &str,
    key: &SigningKey,
    token: &SessionToken<'_>,
    now: u64,
) -> Result<String, SignError> {
    let jti = uuid::Uuid::new_v4().simple().to_string();
    let claims = SessionClaims {
        iss: issuer,
        sub: token.user_id,
        aud: token.audience,
        exp: token.expires_at,
        iat: now,
        nbf: now,
        jti: &jti,
        sid: token.session,
        device_guid: token.device,
    };
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    header.typ = Some(token.token_type.to_owned());
    Ok(jsonwebtoken::encode(&header, &claims, &key.key)?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use jsonwebtoken::DecodingKey;

    use super::*;
    use crate::authn::keyset::{KeySet, VerifyingKey};
    use crate::authn::{IssuerPolicy, NoRevocations, Verifier};

    #[test]
    fn at_hash_matches_the_openid_connect_example() {
        // OpenID Connect Core 1.0, Appendix A.3.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn issued_tokens_verify_with_the_matching_policy() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("keypair");
        let signing = SigningKey {
            kid: "ed-1".into(),
            alg: Algorithm::EdDSA,
            key: EncodingKey::from_ed_pem(pair.serialize_pem().as_bytes()).expect("key"),
        };
        let keys = Arc::new(KeySet::default());
        let decoding = DecodingKey::from_ed_pem(pair.public_key_pem().as_bytes()).expect("key");
        keys.insert(
            "https://gw",
            "ed-1",
            VerifyingKey::new(Algorithm::EdDSA, decoding).expect("key"),
        );
        let policy = IssuerPolicy {
            issuer: "https://gw".into(),
            algorithms: vec![Algorithm::EdDSA],
            audiences: vec![],
            accepted_types: vec![ACCESS_TOKEN_TYPE.into()],
            user_claim: "sub".into(),
            group_claim: Some("gid".into()),
            roles_claim: Some("roles".into()),
            subject_prefix: None,
            delegation: true,
            require_client_id: true,
        };
        let verifier = Verifier::new(keys, vec![policy], 30, 10, Arc::new(NoRevocations));
        let spec = AccessTokenSpec {
            user_id: "42".into(),
            group_id: Some(7),
            roles: vec!["admin".into()],
            client_id: Some("app".into()),
            audiences: vec!["orders".into()],
            resources: Vec::new(),
            scopes: vec!["read".into(), "write".into()],
            ttl: Duration::from_secs(600),
            actor: Some("9".into()),
            token_type: None,
            style: TokenStyle::Standard,
        };
        let now = jsonwebtoken::get_current_timestamp();
        let issued = issue("https://gw", &signing, &spec, now).expect("signed");
        assert_eq!(issued.expires_at, now + 600);
        let principal = verifier.verify(&issued.token).expect("verifies");
        assert_eq!(principal.user_id, "42");
        assert_eq!(principal.group_id.as_deref(), Some("7"));
        assert_eq!(principal.audiences, vec!["app", "orders"]);
        assert_eq!(principal.scopes, vec!["read", "write"]);
        assert_eq!(principal.jti.as_deref(), Some(issued.jti.as_str()));
        assert!(principal.has_role("admin"));
    }
}
