//! Brute-force back-off for password logins and client secrets.
//!
//! Failures are counted under three keys: (account, source), source alone, and account alone.
//! The first two *block*: after a few free failures every further attempt is refused with a
//! retry-after that doubles per failure, up to a cap. The account alone only *slows down*
//! (a small delay before checking): blocking by account would let anyone lock a victim out.
//! IPv6 sources are counted per /64, what one subscriber usually gets.
//!
//! [`Throttle`] keeps the counts in memory (one instance: SQLite). A cluster shares them in
//! the store instead (`grant/backoff.rs`), with the same policy and arithmetic
//! ([`ThrottlePolicy::verdict`]), so N instances do not allow N times the attempts. Memory is
//! bounded: at most `capacity` entries; entries idle for longer than `forget_after` are
//! dropped first, then the oldest.

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
    /// The longest block, however many failures.
    pub max_block: Duration,
    /// Failures per account before attempts on it are slowed down.
    pub account_free: u32,
    /// Delay per account failure beyond `account_free`, capped by `max_account_delay`.
    pub account_delay: Duration,
    /// The longest slow-down of one attempt on an account.
    pub max_account_delay: Duration,
    /// An entry without failure for this long is forgotten.
    pub forget_after: Duration,
    /// Entries kept in memory at most (the oldest go first), so a flood of sources cannot
    /// exhaust memory.
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

impl ThrottlePolicy {
    /// How long `failures` failures, the last one `since` ago, still block when `free` are
    /// allowed; whole seconds, rounded up, as `Retry-After` carries them.
    fn block_left(&self, failures: u32, free: u32, since: Duration) -> Option<Duration> {
        if failures < free || since >= self.forget_after {
            return None;
        }
        let doublings = (failures - free).min(20);
        let block = self
            .base_block
            .saturating_mul(1 << doublings)
            .min(self.max_block);
        let left = block.saturating_sub(since);
        (!left.is_zero())
            .then(|| Duration::from_secs(left.as_secs() + u64::from(left.subsec_nanos() > 0)))
    }

    /// The slow-down for an account with `failures` failures, the last one `since` ago.
    fn account_slowdown(&self, failures: u32, since: Duration) -> Duration {
        if failures <= self.account_free || since >= self.forget_after {
            return Duration::ZERO;
        }
        self.account_delay
            .saturating_mul(failures - self.account_free)
            .min(self.max_account_delay)
    }

    /// The verdict from the three counts, each `(failures, time since the last)` if any.
    pub fn verdict(
        &self,
        pair: Option<(u32, Duration)>,
        source: Option<(u32, Duration)>,
        account: Option<(u32, Duration)>,
    ) -> Verdict {
        let blocked = [(pair, self.pair_free), (source, self.source_free)]
            .into_iter()
            .filter_map(|(count, free)| {
                let (failures, since) = count?;
                self.block_left(failures, free, since)
            })
            .max();
        match blocked {
            Some(retry_after) => Verdict::Blocked { retry_after },
            None => Verdict::Proceed {
                delay: account.map_or(Duration::ZERO, |(failures, since)| {
                    self.account_slowdown(failures, since)
                }),
            },
        }
    }

    /// Whether a count whose last failure was `since` ago still counts.
    pub fn is_fresh(&self, since: Duration) -> bool {
        since < self.forget_after
    }
}

/// The names under which the three counts of an attempt are shared between instances (the
/// store's back-off table): (account, source), source, account.
pub fn shared_keys(account: &str, source: IpAddr) -> [String; 3] {
    let source = source_key(source);
    [
        format!("pair:{source}|{account}"),
        format!("source:{source}"),
        format!("account:{account}"),
    ]
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
    Proceed {
        /// The slow-down earned by the account's failures.
        delay: Duration,
    },
    /// Refuse it without checking.
    Blocked {
        /// When the block ends.
        retry_after: Duration,
    },
}

/// The back-off's counts in this process (one instance on SQLite); a cluster's are in the
/// store ([`super::backoff`](super)). Bounded by [`ThrottlePolicy::capacity`].
#[derive(Debug, Default)]
pub struct Throttle {
    policy: ThrottlePolicy,
    entries: Mutex<HashMap<Key, Entry>>,
}

/// The source as counted: one subscriber (IPv6 per /64).
fn source_key(source: IpAddr) -> IpAddr {
    crate::net::subscriber(source)
}

impl Throttle {
    /// An empty counter under `policy`.
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
        let count = |key: &Key| {
            entries
                .get(key)
                .map(|e| (e.failures, now.saturating_duration_since(e.last)))
        };
        self.policy.verdict(
            count(&Key::Pair(account.to_owned(), source)),
            count(&Key::Source(source)),
            count(&Key::Account(account.to_owned())),
        )
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

    /// The thresholds and delays (the shared back-off applies the same ones).
    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    /// How many sources, accounts and pairs are counted now.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// Nothing is counted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fresh(&self, entry: &Entry, now: Instant) -> bool {
        self.policy
            .is_fresh(now.saturating_duration_since(entry.last))
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
