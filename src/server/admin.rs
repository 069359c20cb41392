//! The admin listener (plain HTTP, meant for localhost or a private network): `/healthz` says
//! the process is alive, `/readyz` says it accepts traffic (503 while draining), `/metrics`
//! renders [`crate::metrics::Metrics`] in the Prometheus text format.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::http::{Body, json_response};
use crate::keyring::Keyring;
use crate::metrics::{Metrics, Scraped};
use crate::store::StoreHealth;

/// What the admin endpoints read.
pub struct AdminState {
    /// False once draining has begun: `/readyz` then answers 503.
    pub ready: Arc<AtomicBool>,
    /// The current proxy and authenticator (a reload replaces them).
    pub live: Arc<super::Live>,
    /// Our keys: the key-set stats go to `/metrics`; its store is pinged for `/readyz` and
    /// `/metrics`.
    pub keyring: Arc<Keyring>,
    /// What `/metrics` renders.
    pub metrics: Arc<Metrics>,
    /// The connection slots and their number: open connections = number − available.
    pub connections: Option<(Arc<tokio::sync::Semaphore>, usize)>,
}

/// Serves the admin endpoints (HTTP/1.1 only) until `stop` says so; an accept error is logged
/// and retried, never fatal.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>, mut stop: watch::Receiver<bool>) {
    loop {
        let (stream, _) = tokio::select! {
            _ = crate::shutdown::stopped(&mut stop) => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(answer(&request, &state).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "admin connection ended with an error");
            }
        });
    }
}

async fn answer(request: &Request<Incoming>, state: &AdminState) -> Response<Body> {
    let ready = state.ready.load(Ordering::Relaxed);
    match request.uri().path() {
        "/metrics" => {
            let health = state.keyring.store().health(HEALTH_TIMEOUT).await;
            metrics(state, &health)
        }
        "/healthz" => json_response(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        // Ready while not draining, even with the store unreachable: JWTs (and cached opaque
        // tokens) still validate, and every instance shares the one store anyway. The store's
        // state is reported for operators and alerts.
        "/readyz" => {
            let health = state.keyring.store().health(HEALTH_TIMEOUT).await;
            let (status, word) = if ready {
                (StatusCode::OK, "ready")
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "draining")
            };
            let body = serde_json::json!({
                "status": word,
                "store": {
                    "backend": health.backend,
                    "reachable": health.reachable,
                    "latency_ms": health.latency.as_secs_f64() * 1000.0,
                    "pool": {
                        "open": health.open_connections,
                        "idle": health.idle_connections,
                        "max": health.max_connections,
                    },
                    "acquire_timeout_ms": health.acquire_timeout.as_millis() as u64,
                    "statement_timeout_ms": health.statement_timeout.as_millis() as u64,
                },
            });
            json_response(status, &body)
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "not_found", "error_description": "admin paths: /healthz, /readyz, /metrics"}),
        ),
    }
}

/// The store's health query is bounded: a scrape or a probe never hangs on a dead database.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

fn metrics(state: &AdminState, health: &StoreHealth) -> Response<Body> {
    use http_body_util::BodyExt;
    let mut key_sets = vec![(state.keyring.issuer().to_owned(), state.keyring.stats())];
    let authn = state.live.authn.load();
    key_sets.extend(authn.issuer_stats());
    state.metrics.set_scraped(&Scraped {
        now: jsonwebtoken::get_current_timestamp(),
        token_cache: authn.cache_stats(),
        key_sets,
        store: Some(health.clone()),
        open_connections: state
            .connections
            .as_ref()
            .map(|(slots, max)| max.saturating_sub(slots.available_permits()) as u64),
    });
    let text = state.metrics.render();
    let body = http_body_util::Full::new(bytes::Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}
