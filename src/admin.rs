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

use crate::authn::Authenticator;
use crate::keyring::Keyring;
use crate::metrics::{Metrics, Scraped};
use crate::proxy::Body;
use crate::proxy::error::json_response;

/// What the admin endpoints read.
pub struct AdminState {
    pub ready: Arc<AtomicBool>,
    pub authn: Arc<Authenticator>,
    pub keyring: Arc<Keyring>,
    pub metrics: Arc<Metrics>,
}

pub async fn serve(listener: TcpListener, state: Arc<AdminState>, mut stop: watch::Receiver<bool>) {
    loop {
        let (stream, _) = tokio::select! {
            _ = crate::server::stopped(&mut stop) => return,
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
                let response = answer(&request, &state);
                async move { Ok::<_, Infallible>(response) }
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

fn answer(request: &Request<Incoming>, state: &AdminState) -> Response<Body> {
    let ready = state.ready.load(Ordering::Relaxed);
    match request.uri().path() {
        "/metrics" => metrics(state),
        "/healthz" => json_response(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        "/readyz" if ready => {
            json_response(StatusCode::OK, &serde_json::json!({"status": "ready"}))
        }
        "/readyz" => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"status": "draining"}),
        ),
        _ => json_response(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "not_found", "error_description": "admin paths: /healthz, /readyz, /metrics"}),
        ),
    }
}

fn metrics(state: &AdminState) -> Response<Body> {
    use http_body_util::BodyExt;
    let mut key_sets = vec![(state.keyring.issuer().to_owned(), state.keyring.stats())];
    key_sets.extend(state.authn.issuer_stats());
    state.metrics.set_scraped(&Scraped {
        now: jsonwebtoken::get_current_timestamp(),
        token_cache: state.authn.cache_stats(),
        key_sets,
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
