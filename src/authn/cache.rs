//! Verified-token cache: a client that sends the same token again does not pay for the
//! signature again. Keyed by SHA-256 of the whole token (never the token itself), holding the
//! verified principal until the token's `exp`, bounded in size. Revocation is checked by the
//! caller on every hit, so a token revoked after it was cached is still refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use super::Principal;

pub type TokenDigest = [u8; 32];

pub fn digest(token: &str) -> TokenDigest {
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(hash.as_ref());
    out
}

pub struct VerifiedCache {
    entries: DashMap<TokenDigest, Arc<Principal>>,
    max_entries: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    /// When a full cache was last swept (seconds since the epoch).
    last_sweep: AtomicU64,
}

/// Counters for the admin listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
}

impl VerifiedCache {
    pub fn new(max_entries: usize) -> Self {
        VerifiedCache {
            entries: DashMap::new(),
            max_entries,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            last_sweep: AtomicU64::new(0),
        }
    }

    /// The cached principal, if present and not expired at `now` (seconds since the epoch).
    pub fn get(&self, key: &TokenDigest, now: u64) -> Option<Arc<Principal>> {
        let hit = self.entries.get(key).map(|p| Arc::clone(p.value()));
        match hit {
            Some(hit) if hit.expires_at > now => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(hit)
            }
            expired => {
                if expired.is_some() {
                    self.entries.remove(key);
                }
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.entries.len(),
        }
    }

    /// Stores a verified principal. When full, expired entries are swept — at most once a
    /// second, since a sweep walks the whole map — and if it is still full the entry is not
    /// cached (the next request verifies again: correct, only slower).
    pub fn insert(&self, key: TokenDigest, principal: Arc<Principal>, now: u64) {
        if self.max_entries == 0 {
            return;
        }
        if self.entries.len() >= self.max_entries {
            let last = self.last_sweep.load(Ordering::Relaxed);
            if now <= last
                || self
                    .last_sweep
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                return;
            }
            self.entries.retain(|_, p| p.expires_at > now);
            if self.entries.len() >= self.max_entries {
                return;
            }
        }
        self.entries.insert(key, principal);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
