//! Integration-test harness for authgate.
//!
//! * [`GatewayConfig`] renders a `gateway.toml` (HTTPS listener on port 0, a freshly generated
//!   self-signed certificate), and [`TestGateway::start`] loads it with
//!   `authgate::config::load`, binds with `Gateway::bind` and spawns `Gateway::run`.
//! * [`Stub`] is a recording upstream (HTTP/1.1 and h2c prior knowledge) with a few answer
//!   modes.
//! * [`https_client`] is a hyper client trusting the test certificate; [`raw_exchange`] writes raw
//!   bytes over TLS (for paths and headers a client library would normalise) and parses the
//!   answer itself.
//!
//! * [`eventually`] polls a condition with a deadline (instead of a fixed sleep);
//!   [`jwt_claims`] and [`jwt_header`] read a JWT; [`PgSchema`] is a PostgreSQL schema of a
//!   test's own; [`new_user`], [`oauth_client`] and friends fill a test's store.
//!
//! Every network step runs under a timeout so a broken gateway fails a test instead of hanging it.
#![allow(dead_code)]
#![allow(unused_imports)]
#![allow(clippy::unwrap_used)]

mod fixtures;
mod jwt;
mod pg;
mod wait;

pub use fixtures::*;
pub use jwt::*;
pub use pg::*;
pub use wait::*;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Once};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode, Version};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Upper bound for any single network step in the tests (a failing gateway must not hang a test).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// Install the aws-lc-rs provider as the process default (ignored if already installed).
pub fn init_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// Await `fut`, panicking with `what` if it takes longer than [`STEP_TIMEOUT`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(STEP_TIMEOUT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {STEP_TIMEOUT:?}: {what}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Gateway configuration and lifecycle
// ---------------------------------------------------------------------------------------------

/// Builder for the `gateway.toml` a test gateway runs with.
///
/// `[server] listen = "127.0.0.1:0"` and the `[tls]` section (a generated certificate) are always
/// written; everything else is added by the test.
#[derive(Default, Clone)]
pub struct GatewayConfig {
    server: Vec<String>,
    /// The `[tls]` lines; `None`: the generated `cert.pem` and `key.pem`.
    tls: Option<String>,
    sections: Vec<String>,
    routes: Vec<String>,
}

impl GatewayConfig {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `key = value` line(s) under `[server]`.
    pub fn server(mut self, lines: &str) -> Self {
        self.server.push(lines.to_string());
        self
    }

    /// Add a whole raw TOML table (e.g. `[identity]\nstrip_headers = [..]`); written before the
    /// routes.
    pub fn section(mut self, toml: &str) -> Self {
        self.sections.push(toml.to_string());
        self
    }

    /// Add a `[[routes]]` table with the given body (`key = value` lines).
    pub fn route(mut self, body: &str) -> Self {
        self.routes.push(body.to_string());
        self
    }

    /// A public route `prefix` -> `upstream` (see [`public`]).
    pub fn public_route(self, prefix: &str, upstream: &(impl Upstream + ?Sized)) -> Self {
        self.route(&public(prefix, upstream))
    }

    /// Replace the `[tls]` lines (by default the generated `cert.pem` and `key.pem`).
    pub fn tls(mut self, lines: &str) -> Self {
        self.tls = Some(lines.to_string());
        self
    }

    /// Render into `dir/gateway.toml`; returns its path.
    pub fn write_to(&self, dir: &Path) -> PathBuf {
        let path = dir.join("gateway.toml");
        std::fs::write(&path, self.render()).unwrap();
        path
    }

    /// Enable the plain-HTTP listener on an ephemeral port.
    pub fn plain_listener(self) -> Self {
        self.server("plain_listen = \"127.0.0.1:0\"")
    }

    /// Enable the admin listener on an ephemeral port.
    pub fn admin(self) -> Self {
        self.section("[admin]\nlisten = \"127.0.0.1:0\"")
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str("[server]\nlisten = \"127.0.0.1:0\"\n");
        for l in &self.server {
            s.push_str(l);
            s.push('\n');
        }
        s.push_str("\n[tls]\n");
        s.push_str(
            self.tls
                .as_deref()
                .unwrap_or("cert = \"cert.pem\"\nkey = \"key.pem\""),
        );
        s.push('\n');
        s.push_str("\n[log]\nlevel = \"warn\"\n");
        for sec in &self.sections {
            s.push('\n');
            s.push_str(sec);
            s.push('\n');
        }
        for r in &self.routes {
            s.push_str("\n[[routes]]\n");
            s.push_str(r);
            s.push('\n');
        }
        s
    }
}

/// What a route's `upstream` is given as: a URL or `builtin:…` string, or a [`Stub`].
pub trait Upstream {
    fn upstream(&self) -> String;
}

impl Upstream for str {
    fn upstream(&self) -> String {
        self.to_owned()
    }
}

impl Upstream for String {
    fn upstream(&self) -> String {
        self.clone()
    }
}

impl Upstream for Stub {
    fn upstream(&self) -> String {
        self.url()
    }
}

/// The body of a `[[routes]]` table: `prefix` to `upstream` under the policy `auth`
/// (`public`, `authenticated`, `admin`, …); add further `key = value` lines after it.
pub fn route_body(prefix: &str, upstream: &(impl Upstream + ?Sized), auth: &str) -> String {
    format!(
        "prefix = {prefix:?}\nupstream = {:?}\nauth = {auth:?}",
        upstream.upstream()
    )
}

/// The body of a public `[[routes]]` table `prefix` -> `upstream`.
pub fn public(prefix: &str, upstream: &(impl Upstream + ?Sized)) -> String {
    route_body(prefix, upstream, "public")
}

/// Generate a self-signed certificate for `localhost` and `127.0.0.1` into `dir`
/// (`cert.pem`, `key.pem`).
pub fn write_test_cert(dir: &Path) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("generate test certificate");
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
}

/// A running in-process gateway.
pub struct TestGateway {
    pub dir: TempDir,
    pub config_path: PathBuf,
    pub https_addr: SocketAddr,
    pub plain_addr: Option<SocketAddr>,
    pub admin_addr: Option<SocketAddr>,
    /// The certificate the gateway serves, trusted by the test clients.
    pub cert: CertificateDer<'static>,
    /// Reloads the gateway's config file.
    pub reloader: Arc<authgate::server::reload::Reloader>,
    shutdown_tx: Option<oneshot::Sender<()>>,
    join: Option<JoinHandle<Result<(), authgate::server::ServerError>>>,
}

impl TestGateway {
    /// Write `cfg` (plus a generated certificate) into a temp dir and start a gateway with it.
    pub async fn start(cfg: GatewayConfig) -> TestGateway {
        let dir = tempfile::tempdir().unwrap();
        write_test_cert(dir.path());
        let config_path = dir.path().join("gateway.toml");
        let toml = cfg.render();
        std::fs::write(&config_path, &toml).unwrap();
        let cert_path = dir.path().join("cert.pem");
        match Self::launch(dir, config_path, cert_path).await {
            Ok(gw) => gw,
            Err(e) => panic!("gateway failed to start: {e}\n--- config ---\n{toml}"),
        }
    }

    /// Load `config_path`, bind, spawn `run`, then trust the PEM certificate found at
    /// `cert_path` (read after binding, so a generated dev certificate works too).
    pub async fn launch(
        dir: TempDir,
        config_path: PathBuf,
        cert_path: PathBuf,
    ) -> Result<TestGateway, String> {
        init_crypto();
        let config = authgate::config::load(&config_path).map_err(|e| format!("load: {e}"))?;
        let gw = within("Gateway::bind", authgate::server::Gateway::bind(config))
            .await
            .map_err(|e| format!("bind: {e}"))?;
        let https_addr = gw.https_addr();
        let plain_addr = gw.plain_addr();
        let admin_addr = gw.admin_addr();
        let reloader = gw.reloader();
        let cert = CertificateDer::from_pem_file(&cert_path)
            .map_err(|e| format!("read {}: {e:?}", cert_path.display()))?
            .into_owned();
        let (tx, rx) = oneshot::channel::<()>();
        let join = tokio::spawn(gw.run(async move {
            let _ = rx.await;
        }));
        Ok(TestGateway {
            dir,
            config_path,
            https_addr,
            plain_addr,
            admin_addr,
            cert,
            reloader,
            shutdown_tx: Some(tx),
            join: Some(join),
        })
    }

    /// `https://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{}", self.https_addr, path)
    }

    /// `http://127.0.0.1:PORT{path}` on the plain listener.
    pub fn plain_url(&self, path: &str) -> String {
        format!(
            "http://{}{}",
            self.plain_addr.expect("plain listener configured"),
            path
        )
    }

    /// `http://127.0.0.1:PORT{path}` on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!(
            "http://{}{}",
            self.admin_addr.expect("admin listener configured"),
            path
        )
    }

    /// A client trusting this gateway's certificate. `h2`: negotiate HTTP/2 only, else HTTP/1.1.
    pub fn client(&self, h2: bool) -> HttpsClient<Full<Bytes>> {
        https_client(&self.cert, h2)
    }

    /// Trigger shutdown without waiting for `run` to return.
    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
    }

    /// Wait for `run` to return (after [`Self::trigger_shutdown`]).
    pub async fn join(&mut self) -> Result<(), String> {
        let join = self.join.take().expect("run task still present");
        match within("Gateway::run to return after shutdown", join).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("run returned an error: {e}")),
            Err(e) => Err(format!("run task panicked: {e}")),
        }
    }

    /// Trigger shutdown and wait for `run` to return.
    pub async fn shutdown(mut self) -> Result<(), String> {
        self.trigger_shutdown();
        self.join().await
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.trigger_shutdown();
    }
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

pub type HttpsClient<B> = LegacyClient<HttpsConnector<HttpConnector>, B>;

/// rustls client config trusting exactly `cert`, with the given ALPN protocols.
pub fn tls_client_config(cert: &CertificateDer<'static>, alpn: &[&[u8]]) -> rustls::ClientConfig {
    init_crypto();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(cert.clone())
        .expect("add test cert to root store");
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    cfg
}

/// A hyper (legacy) client over TLS trusting `cert`; HTTP/2 only (ALPN `h2`) or HTTP/1.1 only.
pub fn https_client<B>(cert: &CertificateDer<'static>, h2: bool) -> HttpsClient<B>
where
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // The connector sets ALPN itself from the enabled versions.
    let tls = tls_client_config(cert, &[]);
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only();
    let mut client = LegacyClient::builder(TokioExecutor::new());
    client.pool_max_idle_per_host(0);
    if h2 {
        client.http2_only(true);
        client.build(builder.enable_http2().build())
    } else {
        client.build(builder.enable_http1().build())
    }
}

/// A plain-HTTP/1.1 client (admin and plain listeners).
pub fn plain_client() -> LegacyClient<HttpConnector, Full<Bytes>> {
    LegacyClient::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(HttpConnector::new())
}

/// A fully read response.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub version: Version,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header"))
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): status {} body {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Send `req` with `client` and read the whole response.
pub async fn send<C, B>(client: &LegacyClient<C, B>, req: Request<B>) -> Resp
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let what = format!("{} {}", req.method(), req.uri());
    within(&what.clone(), async move {
        let resp = client
            .request(req)
            .await
            .unwrap_or_else(|e| panic!("{what}: request failed: {e:?}"));
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{what}: reading body failed: {e:?}"))
            .to_bytes();
        Resp {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
        }
    })
    .await
}

/// GET `url` with `client`.
pub async fn get<C>(client: &LegacyClient<C, Full<Bytes>>, url: &str) -> Resp
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let req = Request::get(url).body(Full::new(Bytes::new())).unwrap();
    send(client, req).await
}

/// Assert the gateway's JSON error shape: status, `error` code, non-empty `error_description`,
/// `request_id` equal to the `x-request-id` header.
pub fn assert_json_error(
    status: u16,
    error: &str,
    r_status: u16,
    headers: &[(String, String)],
    body: &[u8],
) {
    assert_eq!(
        r_status,
        status,
        "status; body: {}",
        String::from_utf8_lossy(body)
    );
    let ct = header_in(headers, "content-type").unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "content-type should be application/json, got {ct:?}"
    );
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "error body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    });
    assert_eq!(v["error"], error, "error code in {v}");
    let desc = v["error_description"].as_str().unwrap_or("");
    assert!(
        !desc.is_empty(),
        "error_description should be a non-empty string in {v}"
    );
    let rid = header_in(headers, "x-request-id").expect("x-request-id header on error response");
    assert_eq!(
        v["request_id"], rid,
        "request_id in body should equal x-request-id header"
    );
}

impl Resp {
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect()
    }
    /// See [`assert_json_error`].
    pub fn assert_error(&self, status: u16, error: &str) {
        assert_json_error(
            status,
            error,
            self.status.as_u16(),
            &self.header_pairs(),
            &self.body,
        );
    }
}

/// First header named `name` (case-insensitive).
pub fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

// ---------------------------------------------------------------------------------------------
// Raw TLS exchange
// ---------------------------------------------------------------------------------------------

/// Open a TLS connection to `addr` trusting `cert`, offering the given ALPN protocols.
pub async fn tls_connect(
    addr: SocketAddr,
    cert: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let tcp = within("TCP connect", TcpStream::connect(addr))
        .await
        .expect("TCP connect to gateway");
    within("TLS handshake", tls_handshake(tcp, cert, alpn)).await
}

/// The client side of a TLS handshake over `tcp` (already connected), trusting `cert`,
/// offering the given ALPN protocols. No timeout of its own.
pub async fn tls_handshake(
    tcp: TcpStream,
    cert: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let cfg = tls_client_config(cert, alpn);
    let connector = TlsConnector::from(Arc::new(cfg));
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with gateway")
}

/// A response parsed from raw bytes.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): status {} body {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn assert_error(&self, status: u16, error: &str) {
        assert_json_error(status, error, self.status, &self.headers, &self.body);
    }
}

/// Connect over TLS (ALPN http/1.1), write `request` verbatim, read one response.
pub async fn raw_exchange(gw: &TestGateway, request: &[u8]) -> RawResponse {
    let mut s = tls_connect(gw.https_addr, &gw.cert, &[b"http/1.1"]).await;
    write_all_ignoring_reset(&mut s, request).await;
    within("read raw response", read_response(&mut s)).await
}

/// `GET {target}` with the given Host and extra header lines (each without CRLF), over raw TLS.
pub async fn raw_get(gw: &TestGateway, target: &str, host: &str, extra: &[&str]) -> RawResponse {
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n");
    for h in extra {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("Connection: close\r\n\r\n");
    raw_exchange(gw, req.as_bytes()).await
}

/// Write, ignoring errors: the gateway may answer and close before it has read everything.
pub async fn write_all_ignoring_reset<S: AsyncWrite + Unpin>(s: &mut S, data: &[u8]) {
    let _ = within("write request", async {
        s.write_all(data).await?;
        s.flush().await
    })
    .await;
}

/// Read one HTTP/1.x response from `s` (Content-Length, chunked or until EOF; no body for 1xx,
/// 204, 304). Does not need the peer to close the connection when the length is known.
pub async fn read_response<S: AsyncRead + Unpin>(s: &mut S) -> RawResponse {
    let mut buf: Vec<u8> = Vec::new();
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).await.unwrap_or(0);
        assert!(
            n > 0,
            "connection closed before a complete response head; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return RawResponse {
            status,
            headers,
            body: rest,
        };
    }
    let chunked = header_in(&headers, "transfer-encoding")
        .map(|v| v.to_ascii_lowercase().contains("chunked"))
        .unwrap_or(false);
    let body = if chunked {
        read_chunked(s, rest).await
    } else if let Some(len) = header_in(&headers, "content-length") {
        let len: usize = len.parse().expect("numeric content-length");
        while rest.len() < len {
            let mut chunk = [0u8; 8192];
            let n = s.read(&mut chunk).await.unwrap_or(0);
            assert!(
                n > 0,
                "connection closed before the full body ({} of {len})",
                rest.len()
            );
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        rest
    } else {
        let _ = s.read_to_end(&mut rest).await;
        rest
    };
    RawResponse {
        status,
        headers,
        body,
    }
}

async fn read_chunked<S: AsyncRead + Unpin>(s: &mut S, mut buf: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        // Need a full size line.
        let line_end = loop {
            if let Some(p) = find(&buf, b"\r\n") {
                break p;
            }
            fill(s, &mut buf).await;
        };
        let size_str = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {size_str:?}"));
        buf.drain(..line_end + 2);
        if size == 0 {
            // Trailers until an empty line; don't insist on reading them.
            return out;
        }
        while buf.len() < size + 2 {
            fill(s, &mut buf).await;
        }
        out.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

async fn fill<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 8192];
    let n = s.read(&mut chunk).await.unwrap_or(0);
    assert!(n > 0, "connection closed in the middle of a chunked body");
    buf.extend_from_slice(&chunk[..n]);
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

/// A body of `remaining` zero bytes sent in 64 KiB chunks that share one allocation: a large
/// body never exists in memory as a whole.
pub struct ZeroBody {
    remaining: u64,
    chunk: Bytes,
    /// Announce the exact length (Content-Length) or not (chunked).
    exact: bool,
}

impl ZeroBody {
    pub fn new(len: u64) -> Self {
        ZeroBody {
            remaining: len,
            chunk: Bytes::from(vec![0u8; 64 * 1024]),
            exact: true,
        }
    }
    /// Same, without announcing the length (HTTP/1.1 sends it chunked).
    pub fn unsized_len(len: u64) -> Self {
        ZeroBody {
            exact: false,
            ..Self::new(len)
        }
    }
}

impl Body for ZeroBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(self.chunk.len() as u64);
        self.remaining -= n;
        let data = self.chunk.slice(0..n as usize);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        if self.exact {
            SizeHint::with_exact(self.remaining)
        } else {
            SizeHint::default()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Recording stub upstream
// ---------------------------------------------------------------------------------------------

/// One request as the stub upstream saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query exactly as received (`/a/b?x=1`).
    pub target: String,
    pub path: String,
    pub query: Option<String>,
    pub version: Version,
    /// Header names lower-cased by hyper, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Number of body bytes read.
    pub body_len: u64,
    /// Reading the body failed (the gateway aborted it).
    pub body_error: bool,
    /// The gateway's port of the upstream connection the request came on.
    pub peer_port: u16,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// How the stub answers.
#[derive(Debug, Clone)]
pub enum Mode {
    /// 200 `{"ok":true}` with `x-stub: ok`.
    Ok,
    /// Read the body, record, sleep, then answer like `Ok`.
    Sleep(Duration),
    /// Answer 101 and echo every byte on the upgraded connection.
    UpgradeEcho,
    /// 200 with the number of body bytes read as the text body.
    CountBody,
    /// 200 with a body of this many zero bytes (streamed, Content-Length set).
    BigResponse(u64),
}

type StubBody = BoxBody<Bytes, Infallible>;

/// A recording upstream on 127.0.0.1:ephemeral, HTTP/1.1 and HTTP/2 prior knowledge.
pub struct Stub {
    pub addr: SocketAddr,
    records: Arc<Mutex<Vec<Recorded>>>,
    open: Arc<std::sync::atomic::AtomicUsize>,
    task: JoinHandle<()>,
}

impl Stub {
    pub async fn start(mode: Mode) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let records: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let open: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let recs = records.clone();
        let opened = open.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    continue;
                };
                let recs = recs.clone();
                let mode = mode.clone();
                let opened = opened.clone();
                opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let recs = recs.clone();
                        let mode = mode.clone();
                        async move {
                            Ok::<_, Infallible>(stub_handle(req, mode, recs, peer.port()).await)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                        .await;
                    opened.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
        });
        Stub {
            addr,
            records,
            open,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn records(&self) -> Vec<Recorded> {
        self.records.lock().unwrap().clone()
    }

    /// Connections from the gateway open right now.
    pub fn open_connections(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The only recorded request (panics unless exactly one was recorded).
    pub fn only(&self) -> Recorded {
        let r = self.records();
        assert_eq!(
            r.len(),
            1,
            "expected exactly one upstream request, got {r:#?}"
        );
        r.into_iter().next().unwrap()
    }

    /// Wait until at least `n` requests were recorded.
    pub async fn wait_for(&self, n: usize) {
        within("stub to record requests", async {
            while self.records.lock().unwrap().len() < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn full(b: impl Into<Bytes>) -> StubBody {
    Full::new(b.into()).boxed()
}

async fn stub_handle(
    mut req: Request<Incoming>,
    mode: Mode,
    recs: Arc<Mutex<Vec<Recorded>>>,
    peer_port: u16,
) -> Response<StubBody> {
    let mut rec = Recorded {
        method: req.method().to_string(),
        target: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        path: req.uri().path().to_string(),
        query: req.uri().query().map(str::to_string),
        version: req.version(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body_len: 0,
        body_error: false,
        peer_port,
    };

    if let Mode::UpgradeEcho = mode {
        recs.lock().unwrap().push(rec);
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 4096];
                loop {
                    match io.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if io.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            let _ = io.flush().await;
                        }
                    }
                }
            }
        });
        return Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            .body(full(Bytes::new()))
            .unwrap();
    }

    // Count the body frame by frame; never buffer it.
    let body = req.body_mut();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    rec.body_len += d.len() as u64;
                }
            }
            Err(_) => {
                rec.body_error = true;
                break;
            }
        }
    }
    let count = rec.body_len;
    recs.lock().unwrap().push(rec);

    match mode {
        Mode::Sleep(d) => {
            tokio::time::sleep(d).await;
            ok_response()
        }
        Mode::CountBody => Response::builder()
            .header("content-type", "text/plain")
            .body(full(count.to_string()))
            .unwrap(),
        Mode::BigResponse(n) => Response::builder()
            .header("content-type", "application/octet-stream")
            .body(ZeroBody::new(n).boxed())
            .unwrap(),
        Mode::Ok | Mode::UpgradeEcho => ok_response(),
    }
}

fn ok_response() -> Response<StubBody> {
    Response::builder()
        .header("content-type", "application/json")
        .header("x-stub", "ok")
        .body(full(r#"{"ok":true}"#))
        .unwrap()
}

/// A TCP port on 127.0.0.1 with nothing listening (bound, then released).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}
