//! What is said about each request once it is answered: the refusal turned into the client's
//! answer (the request id on every response, no body for HEAD), one access-log event (target
//! `authgate::access`) and the request metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::{Method, Request, Response, Uri};

use super::error::ProxyError;
use super::headers::X_REQUEST_ID;
use super::intake::Origin;
use crate::config::{Config, RouteConfig};
use crate::http::Body;
use crate::metrics::Metrics;

/// What the access log and the metrics report besides the response, filled in by the stages.
pub(crate) struct Exchange {
    started: Instant,
    method: Method,
    /// Only kept when the access log is on.
    logged_uri: Option<Uri>,
    /// The forwarding route, as soon as it is known (a refused request has one too).
    pub route: Option<Arc<RouteConfig>>,
    /// The normalised path: a token endpoint's (a metrics label), or for the access log.
    pub path: Option<String>,
    /// A token endpoint answered (its path is the metrics label: a bounded set).
    pub endpoint: bool,
    pub upstream_time: Option<Duration>,
}

impl Exchange {
    /// Keeps the normalised path of a proxied request for the access log; with the log off
    /// nothing reads it, so it is not copied.
    pub fn keep_path(&mut self, path: &str) {
        if self.logged_uri.is_some() {
            self.path = Some(path.to_owned());
        }
    }
}

/// Where requests are reported.
pub(crate) struct Report {
    metrics: Option<Arc<Metrics>>,
    access_log: bool,
    log_query: bool,
}

impl Report {
    pub fn new(config: &Config) -> Self {
        Report {
            metrics: None,
            access_log: config.log.access_log,
            log_query: config.log.log_query,
        }
    }

    pub fn set_metrics(&mut self, metrics: Arc<Metrics>) {
        self.metrics = Some(metrics);
    }

    /// Starts the clock on a request that just arrived.
    pub fn start<B>(&self, request: &Request<B>) -> Exchange {
        Exchange {
            started: Instant::now(),
            method: request.method().clone(),
            logged_uri: self.access_log.then(|| request.uri().clone()),
            route: None,
            path: None,
            endpoint: false,
            upstream_time: None,
        }
    }

    /// The client's answer: the response, or the refusal rendered (counted when it is an auth
    /// failure, logged when it is the gateway's or the upstream's fault).
    pub fn answer(
        &self,
        result: Result<Response<Body>, ProxyError>,
        origin: &Origin<'_>,
        exchange: &Exchange,
    ) -> Response<Body> {
        let request_id = &origin.request_id;
        let mut response = result.unwrap_or_else(|error| {
            if let (Some(metrics), Some(reason)) = (&self.metrics, error.auth_failure()) {
                metrics.auth_failure(reason);
            }
            if error.status().is_server_error() {
                let cause = std::error::Error::source(&error).map(ToString::to_string);
                tracing::warn!(request_id = request_id.to_str().unwrap_or_default(), %error, cause, "request failed");
            }
            error.into_response(request_id)
        });
        response
            .headers_mut()
            .insert(&X_REQUEST_ID, request_id.clone());
        if exchange.method == Method::HEAD {
            // RFC 9110 §9.3.2: never a body (over HTTP/2 one is a protocol error to clients).
            *response.body_mut() = http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed_unsync();
        }
        response
    }

    /// The request metrics and the access-log event.
    pub fn record(&self, exchange: &Exchange, response: &Response<Body>, origin: &Origin<'_>) {
        let total = exchange.started.elapsed();
        let status = response.status().as_u16();
        if let Some(metrics) = &self.metrics {
            let route = match (&exchange.route, &exchange.path) {
                (Some(route), _) => route.name.as_str(),
                (None, Some(path)) if exchange.endpoint => path.as_str(),
                _ => "-",
            };
            metrics.request(
                route,
                &exchange.method,
                status,
                total,
                exchange.upstream_time,
            );
        }
        if let Some(uri) = &exchange.logged_uri {
            let path = exchange.path.as_deref().unwrap_or(uri.path());
            tracing::info!(
                target: "authgate::access",
                request_id = origin.request_id.to_str().unwrap_or_default(),
                method = exchange.method.as_str(),
                path,
                query = if self.log_query { uri.query() } else { None },
                route = exchange.route.as_ref().map(|r| r.name.as_str()),
                status,
                upstream_ms = exchange.upstream_time.map(crate::telemetry::millis),
                total_ms = crate::telemetry::millis(total),
                client = %origin.client.ip,
            );
        }
    }
}
