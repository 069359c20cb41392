//! The JWT verifier: the ordered checks of the security invariants (see `authn.rs`), the
//! verified-token cache in front of them, and the claims → [`Principal`] mapping that makes
//! every forwarded id one plain header value. Revocation is asked on every call, cache hit or
//! not.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::cache::{self, VerifiedCache};
use super::keyset::KeySet;
use super::memo::TokenMemo;
use super::{AuthnError, IssuerPolicy, Principal, Revocations, TokenDefect};

struct Issuer {
    policy: IssuerPolicy,
    validations: HashMap<Algorithm, Validation>,
}

/// Verifies our own and external issuers' JWTs against the shared [`KeySet`]; cheap to
/// share behind an `Arc` (all state inside is concurrent).
pub struct Verifier {
    /// Every algorithm any trusted issuer may use.
    algorithms: std::collections::HashSet<Algorithm>,
    keys: Arc<KeySet>,
    issuers: HashMap<String, Issuer>,
    cache: VerifiedCache,
    doorkeeper: cache::Doorkeeper,
    revocations: Arc<dyn Revocations>,
    /// Tells this verifier's [`TokenMemo`] entries from another's (a reload makes a new one).
    id: u64,
}

/// What an `id_token_hint` names: the person and the client(s) it was issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    /// `sub`.
    pub subject: String,
    /// `aud`.
    pub audiences: Vec<String>,
}

#[derive(serde::Deserialize)]
struct IssuerPeek {
    iss: Option<String>,
}

impl Verifier {
    /// A verifier trusting exactly `policies` (one per issuer), with `leeway_secs` of clock
    /// skew for `exp`/`nbf` and at most `cache_entries` verified tokens remembered.
    pub fn new(
        keys: Arc<KeySet>,
        policies: Vec<IssuerPolicy>,
        leeway_secs: u64,
        cache_entries: usize,
        revocations: Arc<dyn Revocations>,
    ) -> Self {
        let issuers: HashMap<String, Issuer> = policies
            .into_iter()
            .map(|policy| {
                let validations = policy
                    .algorithms
                    .iter()
                    .map(|alg| (*alg, validation(&policy, *alg, leeway_secs)))
                    .collect();
                (
                    policy.issuer.clone(),
                    Issuer {
                        policy,
                        validations,
                    },
                )
            })
            .collect();
        let algorithms = issuers
            .values()
            .flat_map(|i: &Issuer| i.policy.algorithms.iter().copied())
            .collect();
        Verifier {
            algorithms,
            keys,
            issuers,
            cache: VerifiedCache::new(cache_entries),
            doorkeeper: cache::Doorkeeper::new(),
            revocations,
            id: super::memo::next_owner(),
        }
    }

    /// The key set this verifier reads (the keyring and JWKS sources write into it).
    pub fn keys(&self) -> &Arc<KeySet> {
        &self.keys
    }

    /// Hits, misses and size of the verified-token cache, for `/metrics`.
    pub fn cache_stats(&self) -> cache::CacheStats {
        self.cache.stats()
    }

    /// Verifies `token` now (jsonwebtoken reads the same clock for `exp`/`nbf`).
    pub fn verify(&self, token: &str) -> Result<Arc<Principal>, AuthnError> {
        self.verify_on(token, None)
    }

    /// [`Self::verify`], first asking `memo`, the client connection's last token, and leaving
    /// this one there. With the cache off (`cache_entries = 0`) the memo is not used either.
    pub fn verify_on(
        &self,
        token: &str,
        memo: Option<&TokenMemo>,
    ) -> Result<Arc<Principal>, AuthnError> {
        let now = jsonwebtoken::get_current_timestamp();
        let memo = memo.filter(|_| self.cache.capacity() > 0);
        // Read before any key is looked up (see `KeySet::generation`).
        let keys = self.keys.generation();
        let remembered = memo.and_then(|memo| memo.get(self.id, token, now));
        let principal = match remembered {
            // No key removed or replaced since: the one that signed it is still here.
            Some((hit, seen)) if seen == keys => hit,
            Some((hit, _)) => {
                let hit = self.still_trusted(hit)?;
                if let Some(memo) = memo {
                    memo.put(self.id, keys, token, &hit);
                }
                hit
            }
            None => {
                let (principal, cached) = self.verify_cached(token, now)?;
                // Only a token the shared cache holds (seen before): a client sending a new
                // token on every request would pay for a copy of each and never repeat one.
                if let Some(memo) = memo.filter(|_| cached) {
                    memo.put(self.id, keys, token, &principal);
                }
                principal
            }
        };
        super::unrevoked(self.revocations.as_ref(), principal)
    }

    /// The principal from the shared cache, or verified and then cached (the second time it
    /// is seen); whether the cache holds it now.
    fn verify_cached(&self, token: &str, now: u64) -> Result<(Arc<Principal>, bool), AuthnError> {
        let digest = cache::digest(token);
        match self.cache.get(&digest, now) {
            Some(hit) => Ok((self.still_trusted(hit)?, true)),
            None => {
                let verified = Arc::new(self.verify_uncached(token)?);
                let admitted = self.doorkeeper.seen_before(&digest);
                if admitted {
                    self.cache.insert(digest, Arc::clone(&verified), now);
                }
                Ok((verified, admitted))
            }
        }
    }

    /// An ID token `issuer` (ours) signed, as RP-initiated logout's `id_token_hint`: the
    /// signature, the issuer and the absence of `typ` (our ID tokens have none, our access
    /// tokens always one) are checked; `exp` is not (OpenID Connect RP-Initiated Logout §2:
    /// an expired ID token is still a good hint). `None` for anything else.
    pub fn id_token_hint(&self, token: &str, issuer: &str) -> Option<IdTokenHint> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if !self.algorithms.contains(&header.alg) || header.typ.is_some() {
            return None;
        }
        let own = self.issuers.get(issuer)?;
        let mut validation = own.validations.get(&header.alg)?.clone();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["iss", "sub", "aud"]);
        let key = self.keys.get(issuer, header.kid.as_deref()?)?;
        if key.alg != header.alg {
            return None;
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation).ok()?;
        let claims = data.claims;
        Some(IdTokenHint {
            subject: claims.get("sub").and_then(scalar_text)?,
            audiences: claims.get("aud").map(string_list).unwrap_or_default(),
        })
    }

    /// A remembered principal stands only while the key that signed its token is trusted.
    fn still_trusted(&self, hit: Arc<Principal>) -> Result<Arc<Principal>, AuthnError> {
        match self.keys.get(&hit.issuer, &hit.key_id) {
            Some(_) => Ok(hit),
            None => Err(TokenDefect::KeyGone.into()),
        }
    }

    fn verify_uncached(&self, token: &str) -> Result<Principal, AuthnError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenDefect::Malformed)?;
        // The allow-list comes before anything else reads the token's payload.
        if !self.algorithms.contains(&header.alg) {
            return Err(TokenDefect::AlgorithmNotAllowed.into());
        }
        let peek: IssuerPeek = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| TokenDefect::Malformed)?;
        let issuer = peek
            .iss
            .as_deref()
            .and_then(|iss| self.issuers.get(iss))
            .ok_or(TokenDefect::UntrustedIssuer)?;
        let validation = issuer
            .validations
            .get(&header.alg)
            .ok_or(TokenDefect::AlgorithmNotAllowed)?;
        if !issuer.policy.accepted_types.is_empty() {
            let typ = header.typ.as_deref().unwrap_or_default();
            if !issuer
                .policy
                .accepted_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(typ))
            {
                return Err(TokenDefect::NotAnAccessToken.into());
            }
        }
        // RFC 7515 §4.1.11: extensions we do not understand must not be ignored.
        if header.crit.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(TokenDefect::UnsupportedCritical.into());
        }
        let kid = header.kid.as_deref().ok_or(TokenDefect::NoKeyId)?;
        let key =
            self.keys
                .get(&issuer.policy.issuer, kid)
                .ok_or_else(|| AuthnError::UnknownKey {
                    issuer: issuer.policy.issuer.clone(),
                    kid: kid.to_owned(),
                })?;
        if key.alg != header.alg {
            return Err(TokenDefect::AlgorithmMismatch.into());
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation)
            .map_err(|e| TokenDefect::from_jwt(&e))?;
        principal(&issuer.policy, kid, &data.claims)
    }
}

fn validation(policy: &IssuerPolicy, alg: Algorithm, leeway: u64) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = leeway;
    validation.validate_nbf = true;
    validation.set_issuer(&[&policy.issuer]);
    let mut required = vec!["exp", "iss"];
    if policy.audiences.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&policy.audiences);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    validation
}

fn principal(
    policy: &IssuerPolicy,
    kid: &str,
    claims: &Map<String, Value>,
) -> Result<Principal, AuthnError> {
    let text = |name: &str| claims.get(name).and_then(scalar_text);
    // What becomes an identity header must be one plain value: no list (`1002, 1`), no
    // padding (` 1`), nothing an upstream could split or trim into another id.
    let id = |value: String| -> Result<String, AuthnError> {
        if !is_header_id(&value) {
            return Err(TokenDefect::UnforwardableIdentity.into());
        }
        Ok(match &policy.subject_prefix {
            Some(prefix) => format!("{prefix}{value}"),
            None => value,
        })
    };
    let user_id = id(text(&policy.user_claim).ok_or(TokenDefect::NoUser)?)?;
    let list = |name: &str| claims.get(name).map(string_list).unwrap_or_default();
    let mut scopes = list("scope");
    scopes.extend(list("scopes"));
    let client_id = text("client_id");
    if policy.require_client_id && client_id.is_none() {
        return Err(TokenDefect::NotAnAccessToken.into());
    }
    Ok(Principal {
        issuer: policy.issuer.clone(),
        subject: text("sub").unwrap_or_else(|| user_id.clone()),
        group_id: policy
            .group_claim
            .as_deref()
            .and_then(text)
            .map(id)
            .transpose()?,
        roles: policy.roles_claim.as_deref().map(list).unwrap_or_default(),
        scopes,
        client_id,
        audiences: list("aud"),
        jti: text("jti"),
        key_id: kid.to_owned(),
        issued_at: claims.get("iat").and_then(Value::as_u64),
        expires_at: claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or(TokenDefect::MissingClaim)?,
        actor: claims
            .get("act")
            .filter(|_| policy.delegation)
            .and_then(|act| act.get("sub"))
            .and_then(scalar_text)
            .map(id)
            .transpose()?,
        user_id,
    })
}

/// At most 256 characters, none of them whitespace, a comma or a control character.
fn is_header_id(value: &str) -> bool {
    (1..=256).contains(&value.len())
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',')
}

/// Ids arrive as strings or numbers depending on the issuer.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A space-separated string (OAuth `scope`) or an array of strings.
fn string_list(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}
