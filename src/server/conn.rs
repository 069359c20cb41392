//! One client connection: HTTP/1.1 or HTTP/2 (hyper-util's auto builder decides by ALPN or
//! preface), closed when no first request head arrives within `server.header_read_timeout`,
//! gracefully when it has been idle too long or when the gateway drains.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Sleep, sleep_until};

use crate::authn::TokenMemo;
use crate::config::ServerConfig;
use crate::metrics::ConnPhase;
use crate::proxy::{ConnInfo, ConnState, affinity};

use super::screen::{Screened, Tally};

/// hyper's read buffer for a request head, and the longest head the wire check holds: heads
/// between `max_header_bytes` and this get the gateway's JSON 431 from the proxy; beyond it
/// the wire check answers 431 (or 414, or 400 for an endless method) itself.
pub fn head_buffer(config: &ServerConfig) -> usize {
    (config.max_header_bytes * 2).max(16 << 10)
}

/// The HTTP server settings shared by every connection.
pub fn http_builder(config: &ServerConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let header_buffer = head_buffer(config);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(header_buffer)
        .max_headers(256);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(header_buffer).unwrap_or(u32::MAX))
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// Requests in flight on a connection, and when the last one finished.
struct Activity {
    opened: Instant,
    /// A request head has arrived (hyper called the service): the first-head deadline is off.
    any_request: AtomicBool,
    in_flight: AtomicUsize,
    last_done_ms: AtomicU64,
}

struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.0.opened.elapsed().as_millis() as u64;
        self.0.last_done_ms.store(now, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    /// A connection opened now, no request seen yet.
    fn new() -> Arc<Self> {
        Arc::new(Activity {
            opened: Instant::now(),
            any_request: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
        })
    }

    fn start(self: &Arc<Self>) -> InFlight {
        if !self.any_request.load(Ordering::Relaxed) {
            self.any_request.store(true, Ordering::Relaxed);
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// When the connection becomes idle-expired, if nothing happens before then.
    fn idle_deadline(&self, idle_timeout: Duration) -> Instant {
        let last = Duration::from_millis(self.last_done_ms.load(Ordering::Relaxed));
        self.opened + last + idle_timeout
    }

    fn is_idle(&self, idle_timeout: Duration) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
            && Instant::now() >= self.idle_deadline(idle_timeout)
    }
}

/// Closes the upstream connections of a client connection idle for `after`.
struct UpstreamRelease {
    after: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl UpstreamRelease {
    fn new(after: Duration) -> Self {
        UpstreamRelease { after, timer: None }
    }

    /// Drives the upstream connections and releases them once idle; never completes.
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        drivers: &mut affinity::Drivers,
        affinity: &affinity::Affinity,
        activity: &Activity,
    ) -> Poll<()> {
        drivers.poll_all(cx);
        if drivers.is_empty() {
            self.timer = None;
            return Poll::Pending;
        }
        let after = self.after;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(sleep_until(activity.idle_deadline(after).into())));
        while timer.as_mut().poll(cx).is_ready() {
            if activity.is_idle(after) {
                affinity.release(drivers);
                self.timer = None;
                return Poll::Pending;
            }
            // Busy: look again one idle period after the last request ends, at the earliest.
            let next = activity.idle_deadline(after).max(Instant::now() + after);
            timer.as_mut().reset(next.into());
        }
        Poll::Pending
    }
}

/// Which deadline of [`Deadlines`] passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    /// No request head arrived in time: the connection is dropped.
    FirstHead,
    /// Nothing in flight for the idle timeout: the connection closes gracefully.
    Idle,
}

/// The first head's deadline and the idle one, on one timer: made once per connection and
/// polled on every wake of it, so one timer is cheaper than two made anew.
struct Deadlines {
    timer: Pin<Box<Sleep>>,
    /// Until it has passed.
    first_head: Option<Instant>,
    idle_timeout: Duration,
}

impl Deadlines {
    fn new(activity: &Activity, first_head: Instant, idle_timeout: Duration) -> Self {
        let first = first_head.min(activity.idle_deadline(idle_timeout));
        Deadlines {
            timer: Box::pin(sleep_until(first.into())),
            first_head: Some(first_head),
            idle_timeout,
        }
    }

    /// Ready when a deadline has passed; otherwise the timer is set to the next one.
    fn poll(&mut self, cx: &mut Context<'_>, activity: &Activity) -> Poll<Expired> {
        while self.timer.as_mut().poll(cx).is_ready() {
            let fired = self.timer.deadline().into_std();
            if self.first_head.is_some_and(|at| fired >= at) {
                self.first_head = None;
                if !activity.any_request.load(Ordering::Relaxed) {
                    return Poll::Ready(Expired::FirstHead);
                }
            }
            if activity.is_idle(self.idle_timeout) {
                return Poll::Ready(Expired::Idle);
            }
            // Not idle: the idle deadline moved on, or a request runs past it (then look again
            // one idle period from now, so the timer does not fire in a loop).
            let now = Instant::now();
            let idle = activity.idle_deadline(self.idle_timeout);
            let idle = if idle > now {
                idle
            } else {
                now + self.idle_timeout
            };
            let next = self.first_head.map_or(idle, |first| first.min(idle));
            self.timer.as_mut().reset(next.into());
        }
        Poll::Pending
    }
}

/// Serves one connection (after the TLS handshake, if any) until it ends.
pub(super) async fn serve<I>(io: I, info: ConnInfo, shared: &super::Shared)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let live = Arc::clone(&shared.live);
    let (idle_timeout, mut shutdown) = (shared.idle_timeout, shared.shutdown.clone());
    let activity = Activity::new();
    // hyper's own header timeout starts at the first byte: a peer that sends nothing would
    // hold its slot for the idle timeout. Until a first head arrives, this deadline stands.
    let first_head_deadline = activity.opened + shared.header_read_timeout;
    // Upstream connections that follow this client connection; driven below, in this task.
    let (affinity, mut drivers) = affinity::new();
    let state = Arc::new(ConnState {
        affinity,
        token: TokenMemo::default(),
    });
    let release_after = live.proxy.load().affinity_idle_timeout();
    // HTTP/1 bytes are checked before hyper parses them (`screen.rs`); the tally tells the
    // service which request is a refusal and the check how a switch was answered.
    let tally = Arc::new(Tally::default());
    let service = {
        let activity = Arc::clone(&activity);
        let state = Arc::clone(&state);
        let tally = Arc::clone(&tally);
        service_fn(move |request| {
            // The proxy of the current config: a reload takes effect on the next request,
            // also on connections that were open before it.
            let proxy = live.proxy.load_full();
            let in_flight = activity.start();
            let state = Arc::clone(&state);
            let tally = Arc::clone(&tally);
            async move {
                let (n, refused) = tally.next();
                let response = match refused {
                    Some(refusal) => proxy.refuse(&request, info, refusal),
                    // Boxed: hyper keeps room for this future in every connection, idle or
                    // not, and moves it on every request; the box lives only while a request
                    // does.
                    None => Box::pin(proxy.handle(request, info, Some(&state))).await,
                };
                tally.answered(
                    n,
                    response.status() == hyper::StatusCode::SWITCHING_PROTOCOLS,
                );
                drop(in_flight);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let io = Screened::new(io, shared.head_limit, tally);
    // On the heap, built in place: pinned on the stack it would take its room twice in this
    // future (once before the pin, once after), and this future is the connection's task.
    let mut connection = Box::pin(
        shared
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service),
    );
    let mut closing = false;
    let mut upstreams = UpstreamRelease::new(release_after);
    // Built once and polled where it stands: made in the loop, it would be made again (the
    // watch looked at) whenever a branch ends. Every wake of the connection polls it.
    let stopped = crate::shutdown::stopped(&mut shutdown);
    tokio::pin!(stopped);
    let mut deadlines = Deadlines::new(&activity, first_head_deadline, idle_timeout);
    loop {
        tokio::select! {
            // The upstream connections first: a response they read is then written to the
            // client in this same poll.
            biased;
            () = std::future::poll_fn(|cx| upstreams.poll(cx, &mut drivers, &state.affinity, &activity)) => {}
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(peer = %info.peer, %error, "connection ended with an error");
                }
                return;
            }
            () = &mut stopped, if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            expired = std::future::poll_fn(|cx| deadlines.poll(cx, &activity)), if !closing => {
                if expired == Expired::FirstHead {
                    tracing::debug!(peer = %info.peer, "no request head in time; closing");
                    shared.metrics.connection_timed_out(ConnPhase::RequestHead);
                    // Nothing is in flight: dropping the connection is all there is to do.
                    return;
                }
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}
