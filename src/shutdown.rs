//! The stop signal every long-running task listens to: a `watch` flag the server sets when it
//! drains (the accept loops, the admin listener, the key and JWKS refreshers).

use tokio::sync::watch;

/// Resolves once the stop flag is set (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across an await (it is not Send).
    let _ = stop.wait_for(|stop| *stop).await;
}
