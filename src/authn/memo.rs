//! The last token a client connection presented and what it verified as: a keep-alive client
//! sends the same bearer token on request after request, and a byte comparison with the
//! previous one is cheaper than the shared cache's SHA-256 key and map lookup. Only the
//! connection's own earlier token can match, so nothing crosses from one client to another;
//! a hit is checked exactly as a cache hit is (expiry, the key still trusted, revocation),
//! and a config reload (a new [`super::Verifier`] and [`super::OpaqueTokens`]) makes every memo
//! stale. Opaque tokens have no key: their memo is checked for expiry and revocation.

use std::sync::{Arc, Mutex};

use super::Principal;

/// The next owner id: every [`super::Verifier`] and [`super::OpaqueTokens`] takes one, so a
/// memo filled by one is stale for every other (a reload makes new ones).
pub(super) fn next_owner() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// One client connection's memo (see the module docs). Empty until a token verifies.
#[derive(Default)]
pub struct TokenMemo {
    last: Mutex<Option<Entry>>,
}

struct Entry {
    /// The [`super::Verifier`] or [`super::OpaqueTokens`] that resolved it ([`next_owner`]):
    /// another one (after a reload) may trust different issuers or keys.
    verifier: u64,
    /// The key set's [`super::keyset::KeySet::generation`] read before the token's key was
    /// found: while it is unchanged, that key is still trusted.
    keys: u64,
    token: Box<str>,
    principal: Arc<Principal>,
}

impl TokenMemo {
    /// The principal `verifier` found for `token` on this connection and the key set's
    /// generation then, if `token` is the last one and has not expired at `now` (seconds
    /// since the epoch).
    pub(super) fn get(
        &self,
        verifier: u64,
        token: &str,
        now: u64,
    ) -> Option<(Arc<Principal>, u64)> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|e| e.verifier == verifier && *e.token == *token)
            .filter(|e| e.principal.expires_at > now)
            .map(|e| (Arc::clone(&e.principal), e.keys))
    }

    /// Remembers `token`'s principal in place of the previous one; `keys` is the key set's
    /// generation read before its key was looked up.
    pub(super) fn put(&self, verifier: u64, keys: u64, token: &str, principal: &Arc<Principal>) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last.as_mut() {
            // The same token again (its memo had expired, say): no new copy of it.
            Some(entry) if *entry.token == *token => {
                entry.verifier = verifier;
                entry.keys = keys;
                entry.principal = Arc::clone(principal);
            }
            _ => {
                *last = Some(Entry {
                    verifier,
                    keys,
                    token: token.into(),
                    principal: Arc::clone(principal),
                });
            }
        }
    }
}
