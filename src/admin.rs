//! The admin listener (plain HTTP, meant for localhost or a private network): `/healthz` says
//! the process is alive, `/readyz` says it accepts traffic (503 while draining), `/metrics`
//! gives counters in the Prometheus text format (the verified-token cache, for now).

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
use crate::proxy::Body;
use crate::proxy::error::json_response;

pub async fn serve(
    listener: TcpListener,
    ready: Arc<AtomicBool>,
    authn: Arc<Authenticator>,
    mut stop: watch::Receiver<bool>,
) {
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
        let ready = Arc::clone(&ready);
        let authn = Arc::clone(&authn);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = answer(&request, ready.load(Ordering::Relaxed), &authn);
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

fn answer(request: &Request<Incoming>, ready: bool, authn: &Authenticator) -> Response<Body> {
    match request.uri().path() {
        "/metrics" => metrics(authn),
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

fn metrics(authn: &Authenticator) -> Response<Body> {
    use http_body_util::BodyExt;
    let stats = authn.cache_stats();
    let text = format!(
        "# TYPE authgate_token_cache_hits_total counter\n\
         authgate_token_cache_hits_total {}\n\
         # TYPE authgate_token_cache_misses_total counter\n\
         authgate_token_cache_misses_total {}\n\
         # TYPE authgate_token_cache_entries gauge\n\
         authgate_token_cache_entries {}\n",
        stats.hits, stats.misses, stats.entries
    );
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
