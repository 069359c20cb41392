//! Where the login back-off keeps its counts: in this process ([`super::Throttle`]) for one
//! instance on SQLite, in the store for a cluster on PostgreSQL, so N instances behind a load
//! balancer allow no more attempts than one. The policy and the arithmetic are the same.

use std::net::IpAddr;
use std::time::Duration;

use super::throttle::{Verdict, shared_keys};
use super::{Engine, GrantError, instant};
use crate::store::FailureCount;

/// What [`Engine::backoff_check`] saw, for [`Engine::backoff_succeeded`]: whether the shared
/// store holds counts a success must clear. Most credentials are right the first time, so a
/// success usually has nothing to clear and costs no write.
#[must_use]
pub(super) struct Checked {
    clear: bool,
    /// The attempt was slowed down: what was read before the delay may be stale.
    pub delayed: bool,
}

impl Engine {
    pub(super) fn shared_backoff(&self) -> bool {
        self.store.shares_state()
    }

    /// Before checking a credential for `account` from `source`: refused (429) or allowed,
    /// after the slow-down it has earned.
    pub(super) async fn backoff_check(
        &self,
        account: &str,
        source: IpAddr,
    ) -> Result<Checked, GrantError> {
        if self.shared_backoff() {
            let counts = self
                .store
                .failure_counts(&shared_keys(account, source))
                .await
                .map_err(|e| GrantError::internal("reading the login back-off", e))?;
            return self.backoff_check_counts(counts).await;
        }
        apply(self.throttle.check(account, source, instant()), true).await
    }

    /// [`Engine::backoff_check`] on the shared back-off, with the counts of
    /// [`shared_keys`]`(account, source)` already read (with the client, say).
    pub(super) async fn backoff_check_counts(
        &self,
        counts: [Option<FailureCount>; 3],
    ) -> Result<Checked, GrantError> {
        let now = now_ms();
        let count = |c: Option<FailureCount>| {
            c.map(|c| {
                let since = u64::try_from(now.saturating_sub(c.last_at)).unwrap_or(0);
                (c.failures, Duration::from_millis(since))
            })
        };
        let [pair, source, account] = counts;
        // A success clears the pair's and the account's counts: none were there when we
        // looked. One a concurrent failure adds meanwhile stays, which only errs on the
        // strict side (the failure was real).
        let clear = pair.is_some() || account.is_some();
        let verdict = self
            .throttle
            .policy()
            .verdict(count(pair), count(source), count(account));
        apply(verdict, clear).await
    }

    /// A credential for `account` from `source` was wrong. A failure to record it is logged:
    /// the attempt was refused anyway.
    pub(super) async fn backoff_failed(&self, account: &str, source: IpAddr) {
        if !self.shared_backoff() {
            self.throttle.failed(account, source, instant());
            return;
        }
        let forget =
            i64::try_from(self.throttle.policy().forget_after.as_millis()).unwrap_or(i64::MAX);
        let keys = shared_keys(account, source);
        if let Err(error) = self.store.count_failure(&keys, now_ms(), forget).await {
            tracing::warn!(%error, "cannot record a failed login in the shared back-off");
        }
    }

    /// A credential for `account` from `source` was right: the pair and the account start
    /// over (the source's count stays).
    pub(super) async fn backoff_succeeded(&self, account: &str, source: IpAddr, checked: Checked) {
        if !self.shared_backoff() {
            self.throttle.succeeded(account, source);
            return;
        }
        if !checked.clear {
            return;
        }
        let [pair, _, account] = shared_keys(account, source);
        if let Err(error) = self.store.clear_failures(&[&pair, &account]).await {
            tracing::warn!(%error, "cannot clear the shared back-off after a good login");
        }
    }
}

/// Refuses (429), or waits out the slow-down and lets the attempt proceed.
async fn apply(verdict: Verdict, clear: bool) -> Result<Checked, GrantError> {
    match verdict {
        Verdict::Blocked { retry_after } => Err(GrantError::TooManyAttempts { retry_after }),
        Verdict::Proceed { delay } => {
            let delayed = !delay.is_zero();
            if delayed {
                tokio::time::sleep(delay).await;
            }
            Ok(Checked { clear, delayed })
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
