//! Waiting on a condition instead of sleeping a fixed span: poll it until it holds, and fail
//! the test with what was awaited once a deadline passes.

use std::future::Future;
use std::time::{Duration, Instant};

use super::STEP_TIMEOUT;

/// How often [`eventually`] looks again.
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it returns `Some`, and returns that; panics with `what` after
/// [`STEP_TIMEOUT`].
pub async fn eventually_some<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_some_within(what, STEP_TIMEOUT, check).await
}

/// [`eventually_some`] with a deadline of `limit` from now.
pub async fn eventually_some_within<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `check` until it returns true; panics with `what` after [`STEP_TIMEOUT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_some(what, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await
}

/// [`eventually`] with a deadline of `limit` from now.
pub async fn eventually_within<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_some_within(what, limit, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await
}
