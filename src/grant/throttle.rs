//! Brute-force back-off for password logins and client secrets.
//!
//! Failures are counted under three keys: (account, source), source alone, and account alone.
//! The first two *block*: after a few free failures every further attempt is refused with a
//! retry-after that doubles per failure, up to a cap. The account alone only *slows down*
//! (a small delay before checking): blocking by account would let anyone lock a victim out.
//! IPv6 sources are counted per /64, what one subscriber usually gets.
//!
//! In memory, per instance: a cluster of N instances behind a load balancer allows up to N
//! times the attempts. Memory is bounded: at most `capacity` entries; entries idle for longer
//! than `forget_after` are dropped first, then the oldest.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Thresholds and delays.
#[derive(Debug, Clone)]
pub struct ThrottlePolicy {
    /// Failures per (account, source) after which it is blocked.
    pub pair_free: u32,
    /// Failures per source after which it is blocked.
    pub source_free: u32,
    /// First block; doubles with each further failure.
    pub base_block: Duration,
    pub max_block: Duration,
    /// Failures per account before attempts on it are slowed down.
    pub account_free: u32,
    /// Delay per account failure beyond `account_free`, capped by `max_account_delay`.
    pub account_delay: Duration,
    pub max_account_delay: Duration,
    /// An entry without failure for this long is forgotten.
    pub forget_after: Duration,
    pub capacity: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            pair_free: 5,
            source_free: 30,
            base_block: Duration::from_secs(1),
            max_block: Duration::from_secs(15 * 60),
            account_free: 10,
            account_delay: Duration::from_millis(100),
            max_account_delay: Duration::from_secs(1),
            forget_after: Duration::from_secs(60 * 60),
            capacity: 100_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Pair(String, IpAddr),
    Source(IpAddr),
    Account(String),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

/// What to do with an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Check it, after waiting `delay` (zero for most).
    Proceed { delay: Duration },
    /// Refuse it without checking.
    Blocked { retry_after: Duration },
}

#[derive(Debug, Default)]
pub struct Throttle {
    policy: ThrottlePolicy,
    entries: Mutex<HashMap<Key, Entry>>,
}

/// The source as counted: IPv4 as is, IPv6 per /64 (IPv4-mapped ones as IPv4).
fn source_key(source: IpAddr) -> IpAddr {
    match source {
        IpAddr::V4(_) => source,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

impl Throttle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Throttle {
            policy,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Before checking a credential for `account` (a namespaced key such as `user:alice` or
    /// `client:web`) from `source`.
    pub fn check(&self, account: &str, source: IpAddr, now: Instant) -> Verdict {
        let source = source_key(source);
        let Ok(entries) = self.entries.lock() else {
            return Verdict::Blocked {
                retry_after: self.policy.base_block,
            };
        };
        let p = &self.policy;
        let blocked = [
            (Key::Pair(account.to_owned(), source), p.pair_free),
            (Key::Source(source), p.source_free),
        ]
        .into_iter()
        .filter_map(|(key, free)| {
            let entry = entries.get(&key)?;
            self.remaining_block(entry, free, now)
        })
        .max();
        if let Some(retry_after) = blocked {
            return Verdict::Blocked { retry_after };
        }
        let delay = entries
            .get(&Key::Account(account.to_owned()))
            .filter(|e| e.failures > p.account_free && self.fresh(e, now))
            .map_or(Duration::ZERO, |e| {
                p.account_delay
                    .saturating_mul(e.failures - p.account_free)
                    .min(p.max_account_delay)
            });
        Verdict::Proceed { delay }
    }

    /// A credential for `account` from `source` was wrong.
    pub fn failed(&self, account: &str, source: IpAddr, now: Instant) {
        let source = source_key(source);
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        for key in [
            Key::Pair(account.to_owned(), source),
            Key::Source(source),
            Key::Account(account.to_owned()),
        ] {
            if !entries.contains_key(&key) && entries.len() >= self.policy.capacity {
                self.evict(&mut entries, now);
            }
            let entry = entries.entry(key).or_insert(Entry {
                failures: 0,
                last: now,
            });
            if !self.fresh(entry, now) {
                entry.failures = 0;
            }
            entry.failures = entry.failures.saturating_add(1);
            entry.last = now;
        }
    }

    /// A credential for `account` from `source` was right: that pair and the account start over
    /// (the source's count stays, so one good account does not launder a spray).
    pub fn succeeded(&self, account: &str, source: IpAddr) {
        let source = source_key(source);
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&Key::Pair(account.to_owned(), source));
            entries.remove(&Key::Account(account.to_owned()));
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fresh(&self, entry: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(entry.last) < self.policy.forget_after
    }

    /// How long `entry` still blocks, if it does.
    fn remaining_block(&self, entry: &Entry, free: u32, now: Instant) -> Option<Duration> {
        if entry.failures < free || !self.fresh(entry, now) {
            return None;
        }
        let doublings = (entry.failures - free).min(20);
        let block = self
            .policy
            .base_block
            .saturating_mul(1 << doublings)
            .min(self.policy.max_block);
        let until = entry.last + block;
        let left = until.saturating_duration_since(now);
        // Whole seconds, rounded up, as Retry-After carries them.
        (!left.is_zero())
            .then(|| Duration::from_secs(left.as_secs() + u64::from(left.subsec_nanos() > 0)))
    }

    /// Drops stale entries; if none is stale, the oldest tenth.
    fn evict(&self, entries: &mut HashMap<Key, Entry>, now: Instant) {
        let before = entries.len();
        entries.retain(|_, e| self.fresh(e, now));
        if entries.len() < before {
            return;
        }
        let mut ages: Vec<Instant> = entries.values().map(|e| e.last).collect();
        ages.sort_unstable();
        if let Some(cutoff) = ages.get(ages.len() / 10).copied() {
            entries.retain(|_, e| e.last > cutoff);
        }
    }
}

#[cfg(test)]
mod tests;
