//! `/metrics`: the gateway's counters, gauges and histograms in the Prometheus text format.
//!
//! One recorder per gateway (never the process-global one), so several gateways in one process
//! (tests, embedding) keep their own numbers. Events are counted where they happen through the
//! typed methods below; state that already lives elsewhere (the verified-token cache, key-set
//! refreshes) is read at scrape time instead of being mirrored.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder as _};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::authn::AuthFailure;

const META: Metadata<'static> = Metadata::new("authgate", Level::INFO, Some(module_path!()));

/// Request latency buckets (seconds): sub-millisecond proxying up to slow upstreams.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0,
];

/// The gateway's recorder and every series it writes: each metric's name and labels are
/// spelled here only, so the exposition stays a closed, documented set. Label values come from
/// closed enums or configured names (routes, issuers), never from request data.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    open_connections: Gauge,
    failed_logins: Counter,
    /// Request series by route name (a bounded set: routes, token endpoints, `-`).
    routes: DashMap<String, Arc<RouteHandles>>,
    /// Upkeeps run by the background task (for its test).
    upkeeps: std::sync::atomic::AtomicU64,
}

/// Histogram samples queue up until an upkeep folds them into the buckets. A scrape runs one,
/// but without scrapes the queue would grow by every request: a task runs one this often.
#[cfg(not(test))]
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
#[cfg(test)]
const UPKEEP_EVERY: Duration = Duration::from_millis(50);

/// One route's request series.
struct RouteHandles {
    total: Histogram,
    upstream: Histogram,
    /// By (read method, status).
    counts: DashMap<(bool, u16), Counter>,
}

/// Where in its opening a connection ran out of time (the `phase` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnPhase {
    /// Reading the PROXY protocol header (or looking for one).
    ProxyHeader,
    /// The TLS handshake (`server.tls_handshake_timeout`).
    TlsHandshake,
    /// The first request head (`server.header_read_timeout`).
    RequestHead,
}

impl ConnPhase {
    /// The label value (stable: dashboards depend on it).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnPhase::ProxyHeader => "proxy_header",
            ConnPhase::TlsHandshake => "tls_handshake",
            ConnPhase::RequestHead => "request_head",
        }
    }
}

/// What became of a PROXY protocol header, or of its absence (the `result` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// From a trusted proxy, with a client address.
    Accepted,
    /// From a trusted proxy, without one (v2 `LOCAL`, v1 `UNKNOWN`): the socket peer stands.
    Local,
    /// From a peer not in `server.trusted_proxies`: connection closed.
    Untrusted,
    /// From a trusted proxy, malformed or missing: connection closed.
    Invalid,
}

impl ProxyHeader {
    /// The label value (stable: dashboards depend on it).
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyHeader::Accepted => "accepted",
            ProxyHeader::Local => "local",
            ProxyHeader::Untrusted => "untrusted",
            ProxyHeader::Invalid => "invalid",
        }
    }
}

/// Runs an upkeep every [`UPKEEP_EVERY`] while `metrics` lives (outside a runtime: never).
fn spawn_upkeep(metrics: &Arc<Metrics>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(metrics);
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(metrics) = weak.upgrade() else {
                return;
            };
            metrics.handle.run_upkeep();
            metrics
                .upkeeps
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
}

impl Metrics {
    /// A fresh recorder with every fixed series registered (so they show as 0 before the
    /// first event), and, inside a tokio runtime, the upkeep task that lives as long as it.
    pub fn new() -> Arc<Self> {
        let builder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let open_connections =
            recorder.register_gauge(&Key::from_static_name("authgate_open_connections"), &META);
        let failed_logins = recorder.register_counter(
            &Key::from_static_name("authgate_failed_logins_total"),
            &META,
        );
        let metrics = Arc::new(Metrics {
            recorder,
            handle,
            open_connections,
            failed_logins,
            routes: DashMap::new(),
            upkeeps: std::sync::atomic::AtomicU64::new(0),
        });
        spawn_upkeep(&metrics);
        metrics
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &META)
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>) -> Gauge {
        self.recorder
            .register_gauge(&Key::from_parts(name, labels), &META)
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.recorder
            .register_histogram(&Key::from_parts(name, labels), &META)
    }

    /// One proxied or locally answered request: by route (`-` when none matched), method class
    /// (`read`: GET/HEAD/OPTIONS, `write`: the rest) and status; total and upstream latency.
    /// On the hot path: the handles are looked up by borrowed keys, nothing is allocated once a
    /// route has been seen with a status.
    pub fn request(
        &self,
        route: &str,
        method: &hyper::Method,
        status: u16,
        total: Duration,
        upstream: Option<Duration>,
    ) {
        let handles = match self.routes.get(route) {
            Some(handles) => Arc::clone(handles.value()),
            None => Arc::clone(
                self.routes
                    .entry(route.to_owned())
                    .or_insert_with(|| Arc::new(self.route_handles(route)))
                    .value(),
            ),
        };
        let read = method.is_safe();
        let counter = match handles.counts.get(&(read, status)) {
            Some(counter) => counter.clone(),
            None => {
                let counter = self.counter(
                    "authgate_requests_total",
                    vec![
                        Label::new("route", route.to_owned()),
                        Label::new("method", if read { "read" } else { "write" }),
                        Label::new("status", status.to_string()),
                    ],
                );
                handles.counts.insert((read, status), counter.clone());
                counter
            }
        };
        counter.increment(1);
        handles.total.record(total.as_secs_f64());
        if let Some(upstream) = upstream {
            handles.upstream.record(upstream.as_secs_f64());
        }
    }

    fn route_handles(&self, route: &str) -> RouteHandles {
        let label = || vec![Label::new("route", route.to_owned())];
        RouteHandles {
            total: self.histogram("authgate_request_duration_seconds", label()),
            upstream: self.histogram("authgate_upstream_duration_seconds", label()),
            counts: DashMap::new(),
        }
    }

    /// A request refused by authentication or authorization, by why.
    pub fn auth_failure(&self, reason: AuthFailure) {
        self.counter(
            "authgate_auth_failures_total",
            vec![Label::new("reason", reason.as_str())],
        )
        .increment(1);
    }

    /// A token issued by a dialect's endpoint through a grant (both static names).
    pub fn token_issued(&self, dialect: &'static str, grant: &'static str) {
        self.counter(
            "authgate_tokens_issued_total",
            vec![Label::new("dialect", dialect), Label::new("grant", grant)],
        )
        .increment(1);
    }

    /// A password login refused for wrong credentials or a disabled account (counted alike,
    /// as they are answered alike); throttled attempts are not counted here.
    pub fn login_failed(&self) {
        self.failed_logins.increment(1);
    }

    /// A connection closed at once: its address already had `server.max_connections_per_ip`.
    pub fn connection_over_address_limit(&self) {
        self.counter(
            "authgate_connections_refused_total",
            vec![Label::new("reason", "per_address_limit")],
        )
        .increment(1);
    }

    /// A connection closed because `phase` did not finish in time.
    pub fn connection_timed_out(&self, phase: ConnPhase) {
        self.counter(
            "authgate_connections_timed_out_total",
            vec![Label::new("phase", phase.as_str())],
        )
        .increment(1);
    }

    /// What became of a connection's PROXY protocol header.
    pub fn proxy_header(&self, result: ProxyHeader) {
        self.counter(
            "authgate_proxy_headers_total",
            vec![Label::new("result", result.as_str())],
        )
        .increment(1);
    }

    /// A configuration reload: `accepted` when the new configuration took effect, otherwise
    /// it was refused and the old one stays.
    pub fn config_reload(&self, accepted: bool) {
        let result = if accepted { "ok" } else { "rejected" };
        self.counter(
            "authgate_config_reloads_total",
            vec![Label::new("result", result)],
        )
        .increment(1);
    }

    /// Values owned elsewhere, set just before rendering.
    pub fn set_scraped(&self, scraped: &Scraped) {
        let cache = &scraped.token_cache;
        self.counter("authgate_token_cache_hits_total", vec![])
            .absolute(cache.hits);
        self.counter("authgate_token_cache_misses_total", vec![])
            .absolute(cache.misses);
        self.gauge("authgate_token_cache_entries", vec![])
            .set(cache.entries as f64);
        if let Some(open) = scraped.open_connections {
            self.open_connections.set(open as f64);
        }
        if let Some(health) = &scraped.store {
            self.set_store(health);
        }
        for (issuer, stats) in &scraped.key_sets {
            let label = || vec![Label::new("issuer", issuer.clone())];
            self.counter("authgate_keyset_refreshes_total", label())
                .absolute(stats.refreshes);
            self.counter("authgate_keyset_refresh_failures_total", label())
                .absolute(stats.failures);
            // Never refreshed: the age is unknown, so the series is left out rather than 0.
            if let Some(at) = stats.last_success {
                let age = scraped.now.saturating_sub(at);
                self.gauge("authgate_keyset_age_seconds", label())
                    .set(age as f64);
            }
        }
    }

    fn set_store(&self, health: &crate::store::StoreHealth) {
        let backend = || vec![Label::new("backend", health.backend)];
        self.gauge("authgate_store_up", backend())
            .set(if health.reachable { 1.0 } else { 0.0 });
        self.gauge("authgate_store_ping_seconds", backend())
            .set(health.latency.as_secs_f64());
        self.gauge("authgate_store_connections_open", backend())
            .set(f64::from(health.open_connections));
        self.gauge("authgate_store_connections_idle", backend())
            .set(health.idle_connections as f64);
        self.gauge("authgate_store_connections_max", backend())
            .set(f64::from(health.max_connections));
        self.gauge("authgate_store_statement_timeout_seconds", backend())
            .set(health.statement_timeout.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

/// What `/metrics` reads from the rest of the gateway at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Scraped {
    /// Unix seconds now: key-set ages are measured against it.
    pub now: u64,
    /// The verified-token cache's counters.
    pub token_cache: crate::authn::CacheStats,
    /// Per issuer (ours and each external one).
    pub key_sets: Vec<(String, crate::authn::KeySetStats)>,
    /// The store's reachability and pool, when the gateway has a store.
    pub store: Option<crate::store::StoreHealth>,
    /// Client connections open now (HTTPS and plain listeners).
    pub open_connections: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn upkeep_runs_without_scrapes_and_stops_with_the_metrics() {
        let metrics = Metrics::new();
        let weak = Arc::downgrade(&metrics);
        metrics.request(
            "r",
            &hyper::Method::GET,
            200,
            Duration::from_millis(1),
            None,
        );
        // Polled with a generous deadline rather than slept for exactly two periods: on a
        // busy machine the interval's ticks arrive late, which is not what this test is about.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while metrics.upkeeps.load(std::sync::atomic::Ordering::Relaxed) < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no two upkeeps without a scrape"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(metrics);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while weak.upgrade().is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the upkeep task keeps the metrics alive"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
