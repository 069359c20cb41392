//! Upstream connections that follow a client connection. A plain-HTTP/1.1 upstream connection
//! opened for a client connection is driven by that client connection's own task and reused by
//! its next requests: a proxied request then costs no pool lookup, no task spawned to return a
//! connection to a pool, and no wake-up of another task. The upstream connections close with
//! the client connection, or when it has been idle for `upstream.affinity_idle_timeout`, so
//! idle clients do not hold upstream connections.
//!
//! Everything else goes through the shared pool (`upstream.rs`): https and h2c upstreams,
//! protocol upgrades, and requests beyond [`MAX_PER_CLIENT`] in flight at once (HTTP/2
//! clients).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::header::{self, HeaderValue};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::http::{Body, BoxError};

/// Upstream connections one client connection may hold at once; more concurrent requests (an
/// HTTP/2 client) share the pool instead of opening ever more connections.
pub const MAX_PER_CLIENT: usize = 8;

/// An upstream connection's I/O: it makes progress only while polled.
type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The request side, shared by the requests of one client connection.
pub struct Affinity {
    idle: Mutex<Vec<(Authority, http1::SendRequest<Body>)>>,
    open: Arc<AtomicUsize>,
    new_drivers: mpsc::UnboundedSender<Driver>,
}

/// The connection side: polled by the client connection's task, next to the client connection.
pub struct Drivers {
    incoming: mpsc::UnboundedReceiver<Driver>,
    running: Vec<Driver>,
}

/// Why [`Affinity::send`] did not return a response.
#[non_exhaustive]
pub enum SendError {
    /// Every connection this client may hold is busy: send through the shared pool.
    Busy(Box<Request<Body>>),
    /// No upstream connection could be opened (refused, or over the connect timeout).
    Connect(BoxError),
    /// The exchange on an upstream connection failed.
    Http(hyper::Error),
}

/// Counts an upstream connection as open until its driver finishes or is dropped.
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The two halves for one client connection: the request side its requests send through,
/// and the connection side its task polls.
pub fn new() -> (Affinity, Drivers) {
    let (new_drivers, incoming) = mpsc::unbounded_channel();
    let affinity = Affinity {
        idle: Mutex::new(Vec::new()),
        open: Arc::new(AtomicUsize::new(0)),
        new_drivers,
    };
    let drivers = Drivers {
        incoming,
        running: Vec::new(),
    };
    (affinity, drivers)
}

impl Affinity {
    /// Sends `request` (absolute URI, `http` scheme) to `authority` over a connection of this
    /// client connection, opening one when none is free.
    pub async fn send(
        &self,
        authority: &Authority,
        mut request: Request<Body>,
        connect_timeout: Duration,
    ) -> Result<Response<Incoming>, SendError> {
        if let Some(mut sender) = self.take(authority) {
            to_origin_form(&mut request, authority);
            match sender.try_send_request(request).await {
                Ok(response) => {
                    self.put(authority, sender);
                    return Ok(response);
                }
                // Closed (by the upstream's keep-alive timeout, say) before it took the
                // request: nothing was sent, so a fresh connection may carry it.
                Err(mut error) => match error.take_message() {
                    Some(unsent) => {
                        request = unsent;
                        to_absolute_form(&mut request, authority);
                    }
                    None => return Err(SendError::Http(error.into_error())),
                },
            }
        }
        // The slot is taken before connecting: requests arriving together (HTTP/2 streams)
        // must not all pass the limit while their connections are still being opened.
        if self.open.fetch_add(1, Ordering::Relaxed) >= MAX_PER_CLIENT {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return Err(SendError::Busy(Box::new(request)));
        }
        let slot = OpenGuard(Arc::clone(&self.open));
        let mut sender = self.connect(authority, connect_timeout, slot).await?;
        to_origin_form(&mut request, authority);
        match sender.try_send_request(request).await {
            Ok(response) => {
                self.put(authority, sender);
                Ok(response)
            }
            Err(error) => Err(SendError::Http(error.into_error())),
        }
    }

    fn take(&self, authority: &Authority) -> Option<http1::SendRequest<Body>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|(_, sender)| !sender.is_closed());
        let found = idle
            .iter()
            .position(|(key, sender)| key == authority && sender.is_ready())?;
        Some(idle.swap_remove(found).1)
    }

    fn put(&self, authority: &Authority, sender: http1::SendRequest<Body>) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.push((authority.clone(), sender));
    }

    /// Opens a connection; `slot` (dropped on failure) then counts it until its driver ends.
    async fn connect(
        &self,
        authority: &Authority,
        timeout: Duration,
        slot: OpenGuard,
    ) -> Result<http1::SendRequest<Body>, SendError> {
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = authority.port_u16().unwrap_or(80);
        let stream = match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
            Err(_elapsed) => {
                return Err(SendError::Connect(
                    format!("connecting to {authority} timed out after {timeout:?}").into(),
                ));
            }
            Ok(Err(error)) => return Err(SendError::Connect(error.into())),
            Ok(Ok(stream)) => stream,
        };
        stream
            .set_nodelay(true)
            .map_err(|e| SendError::Connect(e.into()))?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(SendError::Http)?;
        let driver: Driver = Box::pin(async move {
            let _open = slot;
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream connection ended with an error");
            }
        });
        // The client connection is closing while a request of it is still being served (an
        // HTTP/2 stream outliving its connection task): give the connection its own task.
        if let Err(mpsc::error::SendError(driver)) = self.new_drivers.send(driver) {
            tokio::spawn(driver);
        }
        Ok(sender)
    }

    /// Closes the idle upstream connections (the client connection went idle).
    pub fn release(&self, drivers: &mut Drivers) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
        drivers.running.clear();
    }
}

impl Drivers {
    /// Drives every upstream connection of the client connection (registering `cx` with each).
    pub fn poll_all(&mut self, cx: &mut Context<'_>) {
        while let Poll::Ready(Some(driver)) = self.incoming.poll_recv(cx) {
            self.running.push(driver);
        }
        self.running
            .retain_mut(|driver| driver.as_mut().poll(cx).is_pending());
    }

    /// No upstream connection is open: the client connection's task need not poll these.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

/// What hyper's pooled client does for HTTP/1: the request line carries only the path and
/// query, and `Host` names the upstream unless the route preserved the client's.
fn to_origin_form(request: &mut Request<Body>, authority: &Authority) {
    if !request.headers().contains_key(header::HOST) {
        let host = match authority.port_u16() {
            Some(80) => authority.host(),
            _ => authority.as_str(),
        };
        if let Ok(value) = HeaderValue::from_str(host) {
            request.headers_mut().insert(header::HOST, value);
        }
    }
    let path = request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *request.uri_mut() = Uri::from(path);
}

/// Back to what the shared pool needs (it connects by the URI), for a request that a closed
/// connection returned unsent and that now overflows to the pool.
fn to_absolute_form(request: &mut Request<Body>, authority: &Authority) {
    let path = request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    if let Ok(uri) = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(authority.clone())
        .path_and_query(path)
        .build()
    {
        *request.uri_mut() = uri;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Empty};

    fn request(uri: &str) -> Request<Body> {
        Request::get(uri)
            .body(Empty::new().map_err(|e| match e {}).boxed_unsync())
            .expect("request")
    }

    #[test]
    fn origin_form_and_host() {
        let authority: Authority = "127.0.0.1:9000".parse().expect("authority");
        let mut r = request("http://127.0.0.1:9000/a/b?c=d");
        to_origin_form(&mut r, &authority);
        assert_eq!(r.uri().to_string(), "/a/b?c=d");
        assert_eq!(r.headers()[header::HOST], "127.0.0.1:9000");

        let authority: Authority = "backend:80".parse().expect("authority");
        let mut r = request("http://backend:80/");
        r.headers_mut()
            .insert(header::HOST, HeaderValue::from_static("client.example"));
        to_origin_form(&mut r, &authority);
        assert_eq!(r.uri().to_string(), "/");
        assert_eq!(r.headers()[header::HOST], "client.example");

        let mut r = request("http://backend:80/x");
        to_origin_form(&mut r, &authority);
        assert_eq!(r.headers()[header::HOST], "backend");
        to_absolute_form(&mut r, &authority);
        assert_eq!(r.uri().to_string(), "http://backend:80/x");
    }
}
