//! Verified-token cache: a client that sends the same token again does not pay for the
//! signature again. Keyed by SHA-256 of the whole token (never the token itself), holding the
//! verified principal until the token's `exp`, bounded in size. Revocation is checked by the
//! caller on every hit, so a token revoked after it was cached is still refused.
//!
//! A [`Doorkeeper`] admits a token to the cache only the second time it is seen, so a stream of
//! one-time tokens (or an attacker's) cannot fill the cache and push out the hot ones; and a
//! full cache makes room (expired entries first, otherwise everything) instead of refusing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use super::Principal;

/// SHA-256 of a whole token: the cache key, so the token itself is never held in memory
/// longer than the request.
pub type TokenDigest = [u8; 32];

/// Keeps `map` under `max` entries: first without what `live` says is over, then empty (a
/// flood of new keys must not grow memory).
pub fn bound<V>(map: &dashmap::DashMap<TokenDigest, V>, max: usize, live: impl Fn(&V) -> bool) {
    if map.len() >= max {
        map.retain(|_, v| live(v));
        if map.len() >= max {
            map.clear();
        }
    }
}

/// The [`TokenDigest`] of `token`.
pub fn digest(token: &str) -> TokenDigest {
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(hash.as_ref());
    out
}

/// Verified principals by [`TokenDigest`], each until its token's `exp`; at most
/// `max_entries` (0: caching off). Holds no revocation state: callers check that on each hit.
pub struct VerifiedCache {
    entries: DashMap<TokenDigest, Arc<Principal>>,
    max_entries: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Counters for the admin listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found a live principal.
    pub hits: u64,
    /// Lookups that found nothing, or an expired entry (then removed).
    pub misses: u64,
    /// Entries held now, expired ones not yet swept included.
    pub entries: usize,
}

impl VerifiedCache {
    /// An empty cache of at most `max_entries` principals (0: nothing is ever stored).
    pub fn new(max_entries: usize) -> Self {
        VerifiedCache {
            entries: DashMap::new(),
            max_entries,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
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

    /// The counters since start (never reset).
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.entries.len(),
        }
    }

    /// Stores a verified principal. A full cache drops its expired entries, and if that is not
    /// enough, all of them: the hot tokens come back on their next use. (Both walk the whole
    /// map, so they happen at most once per fill, not per insert.)
    pub fn insert(&self, key: TokenDigest, principal: Arc<Principal>, now: u64) {
        if self.max_entries == 0 {
            return;
        }
        if self.entries.len() >= self.max_entries {
            self.entries.retain(|_, p| p.expires_at > now);
            if self.entries.len() * 10 >= self.max_entries * 9 {
                self.entries.clear();
            }
        }
        self.entries.insert(key, principal);
    }

    /// At most this many entries are held (0: caching is off).
    pub fn capacity(&self) -> usize {
        self.max_entries
    }

    /// Entries held now, expired ones included until a lookup or a full cache sweeps them.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// "Seen before?" for token digests: a fixed-size bit set (two bits per digest, taken from the
/// digest itself), cleared after as many insertions as keep false positives rare. A false
/// positive only means a token is cached on its first use — harmless.
pub struct Doorkeeper {
    bits: Vec<AtomicU64>,
    inserted: AtomicU64,
}

impl Doorkeeper {
    /// 2^20 bits (128 KiB), reset every 2^17 insertions.
    const BITS: usize = 1 << 20;

    pub fn new() -> Self {
        Doorkeeper {
            bits: (0..Self::BITS / 64).map(|_| AtomicU64::new(0)).collect(),
            inserted: AtomicU64::new(0),
        }
    }

    /// Records `digest`; true if it had been recorded before (since the last reset).
    pub fn seen_before(&self, digest: &TokenDigest) -> bool {
        let index = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&digest[at..at + 8]);
            (u64::from_le_bytes(word) % Self::BITS as u64) as usize
        };
        let mut seen = true;
        for bit in [index(0), index(8)] {
            let mask = 1u64 << (bit % 64);
            seen &= self.bits[bit / 64].fetch_or(mask, Ordering::Relaxed) & mask != 0;
        }
        if !seen && self.inserted.fetch_add(1, Ordering::Relaxed) >= (Self::BITS / 8) as u64 {
            self.inserted.store(0, Ordering::Relaxed);
            self.bits
                .iter()
                .for_each(|word| word.store(0, Ordering::Relaxed));
        }
        seen
    }
}

impl Default for Doorkeeper {
    fn default() -> Self {
        Self::new()
    }
}
