//! Per-route request rate limits: a token bucket per key (the verified user, or the client
//! address the core derived — never a client-sent `X-Forwarded-For` from an untrusted peer),
//! answered with 429 and `Retry-After` when empty.
//!
//! Memory stays bounded: buckets that have refilled completely carry no information and are
//! dropped (`retain_recent`) every few thousand checks, and at once when a route's map grows
//! past [`MAX_KEYS`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::config::{RateKey, RateLimitConfig, RouteConfig};

/// Keys per route beyond which idle buckets are dropped at once.
const MAX_KEYS: usize = 100_000;
/// Idle buckets are dropped every this many checks.
const SWEEP_EVERY: u64 = 4096;

type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

struct Limiter {
    buckets: Keyed,
    key: RateKey,
    checks: AtomicU64,
}

/// The limiters of every route that has one, by route name.
#[derive(Default)]
pub struct RateLimits {
    routes: HashMap<String, Limiter>,
    clock: DefaultClock,
}

/// Who is asking, as far as the limits care.
pub struct Caller<'a> {
    /// The verified user id (or `client:<id>`); `None` on public routes.
    pub user: Option<&'a str>,
    /// The client address (keyed by its subscriber: IPv4 address or IPv6 /64).
    pub ip: IpAddr,
}

impl RateLimits {
    /// A limiter for every route with a `rate_limit`.
    pub fn new(routes: &[RouteConfig]) -> Self {
        let routes = routes
            .iter()
            .filter_map(|route| {
                let limit = route.rate_limit.as_ref()?;
                Some((
                    route.name.clone(),
                    Limiter {
                        buckets: RateLimiter::keyed(quota(limit)),
                        key: limit.key,
                        checks: AtomicU64::new(0),
                    },
                ))
            })
            .collect();
        RateLimits {
            routes,
            clock: DefaultClock::default(),
        }
    }

    /// Does `route` limit by the client address (checked before authentication)?
    pub fn keyed_by_client(&self, route: &RouteConfig) -> bool {
        self.routes
            .get(&route.name)
            .is_some_and(|l| l.key == RateKey::Client)
    }

    /// Takes one request from the caller's bucket; `Err(retry_after)` when it is empty.
    pub fn check(&self, route: &RouteConfig, caller: &Caller<'_>) -> Result<(), Duration> {
        let Some(limiter) = self.routes.get(&route.name) else {
            return Ok(());
        };
        let key = match (limiter.key, caller.user) {
            (RateKey::User, Some(user)) => format!("user:{user}"),
            _ => format!("ip:{}", crate::net::subscriber(caller.ip)),
        };
        let checks = limiter.checks.fetch_add(1, Ordering::Relaxed);
        if checks % SWEEP_EVERY == 0 || limiter.buckets.len() > MAX_KEYS {
            limiter.buckets.retain_recent();
            limiter.buckets.shrink_to_fit();
        }
        limiter.buckets.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            // Whole seconds, at least one, as Retry-After carries them.
            Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
                .max(Duration::from_secs(1))
        })
    }

    /// Buckets held for `route` (the sweep's test).
    #[cfg(test)]
    fn keys(&self, route: &str) -> usize {
        self.routes.get(route).map_or(0, |l| l.buckets.len())
    }
}

/// `requests` per `per`, refilled evenly, `burst` at once.
fn quota(limit: &RateLimitConfig) -> Quota {
    let period = (limit.per / limit.requests).max(Duration::from_nanos(1));
    let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RateKey, RateLimitConfig};

    #[test]
    fn idle_buckets_are_dropped_so_memory_stays_bounded() {
        let mut route = crate::proxy::routes::tests::route("/x", None, "/x", None);
        route.rate_limit = Some(RateLimitConfig {
            requests: 1,
            per: Duration::from_millis(1),
            burst: 1,
            key: RateKey::Client,
        });
        let limits = RateLimits::new(std::slice::from_ref(&route));
        for i in 0..SWEEP_EVERY as u32 {
            let caller = Caller {
                user: None,
                ip: IpAddr::from(i.to_be_bytes()),
            };
            assert!(limits.check(&route, &caller).is_ok());
        }
        assert!(limits.keys("/x") >= SWEEP_EVERY as usize - 1);
        // Every bucket refills within a millisecond; the next sweep drops them all.
        std::thread::sleep(Duration::from_millis(20));
        let caller = Caller {
            user: None,
            ip: IpAddr::from([10, 0, 0, 1]),
        };
        assert!(limits.check(&route, &caller).is_ok());
        assert!(limits.keys("/x") <= 1, "{}", limits.keys("/x"));
    }
}
