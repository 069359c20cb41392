//! Opaque reference tokens on the proxy path: a bearer token that is not a JWT is looked up
//! in the store by its SHA-256, turned into the same [`Principal`] a JWT of ours would give,
//! and cached in memory until it expires. Revocation (the `jti` denylist, the user's
//! not-before) is checked on every use, cached or not, exactly as for JWTs.
//!
//! Unknown tokens are remembered for a few seconds (bounded), so a client hammering with
//! garbage costs one store query per token per few seconds, not one per request.

use std::sync::Arc;

use dashmap::DashMap;

use super::cache::{TokenDigest, VerifiedCache, digest};
use super::memo::TokenMemo;
use super::{AuthnError, Principal, Revocations, TokenDefect};
use crate::store::{OpaqueToken, Store, StoreError};

/// How long an unknown token is answered from memory.
const NEGATIVE_TTL_SECS: u64 = 5;
/// Bound on remembered unknown tokens (a flood of random ones must not grow memory).
const NEGATIVE_MAX: usize = 100_000;

/// Resolves our opaque tokens to principals: the store is the source of truth, the caches
/// (known and unknown tokens) only save queries and never outlive a token's `exp`.
pub struct OpaqueTokens {
    store: Store,
    issuer: String,
    revocations: Arc<dyn Revocations>,
    cache: VerifiedCache,
    unknown: DashMap<TokenDigest, u64>,
    /// Tells this resolver's [`TokenMemo`] entries from any other's.
    id: u64,
}

/// Does `token` look like one of ours (43 characters of base64url), not a JWT?
pub fn is_opaque(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The principal an opaque token of issuer `issuer` speaks for.
pub fn principal(record: &OpaqueToken, issuer: &str) -> Principal {
    Principal {
        issuer: issuer.to_owned(),
        subject: record.subject.clone(),
        user_id: record.subject.clone(),
        group_id: record.group_id.map(|g| g.to_string()),
        roles: record.roles.clone(),
        scopes: record.scopes.clone(),
        client_id: Some(record.client_id.clone()),
        audiences: if record.audiences.is_empty() {
            vec![record.client_id.clone()]
        } else {
            record.audiences.clone()
        },
        jti: Some(record.jti.clone()),
        key_id: String::new(),
        issued_at: u64::try_from(record.issued_at).ok(),
        expires_at: u64::try_from(record.expires_at).unwrap_or(0),
        actor: record.actor.clone(),
    }
}

impl OpaqueTokens {
    /// A resolver reading `store`, giving principals of issuer `issuer` (ours), with at most
    /// `max_entries` resolved tokens cached.
    pub fn new(
        store: Store,
        issuer: &str,
        revocations: Arc<dyn Revocations>,
        max_entries: usize,
    ) -> Self {
        OpaqueTokens {
            store,
            issuer: issuer.to_owned(),
            revocations,
            cache: VerifiedCache::new(max_entries),
            unknown: DashMap::new(),
            id: super::memo::next_owner(),
        }
    }

    /// The live, unrevoked principal of `token`, first asking `memo`, the client connection's
    /// last token (a hit is checked for expiry and revocation as a cache hit is), and leaving
    /// this one there. With the cache off the memo is not used either.
    pub async fn resolve(
        &self,
        token: &str,
        memo: Option<&TokenMemo>,
    ) -> Result<Arc<Principal>, AuthnError> {
        let now = jsonwebtoken::get_current_timestamp();
        let memo = memo.filter(|_| self.cache.capacity() > 0);
        let principal = match memo.and_then(|memo| memo.get(self.id, token, now)) {
            Some((hit, _)) => hit,
            None => {
                let key = digest(token);
                let principal = match self.cache.get(&key, now) {
                    Some(hit) => hit,
                    None => self.load(token, key, now).await?,
                };
                if let Some(memo) = memo {
                    memo.put(self.id, 0, token, &principal);
                }
                principal
            }
        };
        super::unrevoked(self.revocations.as_ref(), principal)
    }

    async fn load(
        &self,
        token: &str,
        key: TokenDigest,
        now: u64,
    ) -> Result<Arc<Principal>, AuthnError> {
        let unknown = AuthnError::InvalidToken(TokenDefect::UnknownOrExpired);
        if self.unknown.get(&key).is_some_and(|until| *until > now) {
            return Err(unknown);
        }
        let at = i64::try_from(now).unwrap_or(i64::MAX);
        match self.store.opaque_token(token, at).await {
            Ok(record) => {
                let principal = Arc::new(principal(&record, &self.issuer));
                self.cache.insert(key, Arc::clone(&principal), now);
                Ok(principal)
            }
            Err(StoreError::NotFound { .. }) => {
                super::cache::bound(&self.unknown, NEGATIVE_MAX, |until| *until > now);
                self.unknown.insert(key, now + NEGATIVE_TTL_SECS);
                Err(unknown)
            }
            Err(error) => {
                tracing::warn!(%error, "looking up an opaque token failed");
                Err(AuthnError::Unavailable)
            }
        }
    }
}
