//! Cluster mode: two real `authgate serve` processes on one PostgreSQL store (a schema of
//! their own). Instance A reaches the database through a TCP relay the test can cut, which is
//! how "the database went away" is simulated without stopping the shared server.
//!
//! Shows: a token from A is accepted at B; a refresh token from A redeems at B, and redeeming
//! it again at A fails and revokes the family everywhere; a revocation at A reaches B (the
//! measured propagation time is printed, the ≤ 2 s target is a benchmark figure, not an
//! assertion); `authgate keys rotate`: new tokens from A verify at B, old ones still do; with
//! its database gone A answers token requests with 503 (never `invalid_grant`) while it keeps
//! validating JWTs, and it recovers by itself when the database returns. The store's read
//! outage (issue 26): slow but readable changes nothing; unreadable for longer than
//! `auth.max_staleness`, own tokens are refused with 503 while an external issuer's pass, and
//! the gateway recovers by itself. SIGKILL under a mixed load loses nothing a client was told
//! (opaque access tokens, refresh tokens, RFC 7009 revocations, codes, token-exchange audit).
//!
//! Needs `AUTHGATE_TEST_DATABASE_URL`; without it the test is ignored (`build.rs`).
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::Value;
use support::{PgSchema, Resp, plain_client, send};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

const KEY_SECRET: &str = "cluster test key secret, 32+ characters long";
const SECRET: &str = "web-secret-0123456789abcdef";
const PASSWORD: &str = "correct horse battery";

/// A TCP relay to the database that can be cut (listener and every open connection),
/// restored on the same port, and slowed down (every chunk, both ways, waits `delay` ms).
struct Relay {
    addr: SocketAddr,
    target: String,
    tasks: Option<JoinSet<()>>,
    delay: Arc<AtomicU64>,
}

impl Relay {
    async fn start(target: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut relay = Relay {
            addr,
            target: target.to_owned(),
            tasks: None,
            delay: Arc::new(AtomicU64::new(0)),
        };
        relay.serve(listener);
        relay
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target.clone();
        let delay = Arc::clone(&self.delay);
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let target = target.clone();
                let delay = Arc::clone(&delay);
                connections.spawn(async move {
                    if let Ok(server) = tokio::net::TcpStream::connect(&target).await {
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        tokio::join!(
                            pump(client_read, server_write, Arc::clone(&delay)),
                            pump(server_read, client_write, delay),
                        );
                    }
                });
            }
        });
        self.tasks = Some(tasks);
    }

    /// Every relayed chunk from now on waits this long.
    fn slow_down(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap();
        self.delay.store(ms, Ordering::Relaxed);
    }

    /// Drops the listener and every relayed connection (aborting the accept task drops the
    /// inner JoinSet, which aborts the connections).
    async fn cut(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.shutdown().await;
        }
    }

    async fn restore(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

/// Copies `from` to `to`, each chunk after the relay's current delay.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Arc<AtomicU64>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let wait = delay.load(Ordering::Relaxed);
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

struct Instance {
    dir: tempfile::TempDir,
    /// The process (killed when the test drops it).
    child: Child,
    http: SocketAddr,
    admin: SocketAddr,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `auth` replaces the `[auth]` table's tuning lines; `extra` is appended (more tables).
fn write_config(
    dir: &Path,
    store_url: &str,
    (http, admin): (u16, u16),
    auth: &str,
    extra: &str,
) -> PathBuf {
    let toml = format!(
        r#"[server]
listen = "127.0.0.1:0"
plain_listen = "127.0.0.1:{http}"
[tls]
cert = "certs/cert.pem"
key = "certs/key.pem"
dev_self_signed = true
[admin]
listen = "127.0.0.1:{admin}"
[log]
level = "warn"
access_log = false
[auth]
issuer = "https://cluster.test"
{auth}
[store]
url = "{store_url}"
[[routes]]
prefix = "/echo"
upstream = "builtin:echo"
[[routes]]
prefix = "/app"
upstream = "builtin:echo"
auth = "session"
{extra}
"#
    );
    let path = dir.join("gateway.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn authgate(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_authgate"));
    command
        .arg("--config")
        .arg(config)
        .env("AUTHGATE_KEY_SECRET", KEY_SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs an admin CLI command to completion; panics unless it succeeds.
async fn cli(config: &Path, args: &[&str], stdin: Option<&str>) -> String {
    use tokio::io::AsyncWriteExt as _;
    let mut child = authgate(config).args(args).spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).await.unwrap();
    }
    drop(pipe);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// So what spreads faster than this came by NOTIFY.
const SLOW_REFRESH: &str = "refresh_interval = \"30s\"";

async fn spawn(store_url: &str) -> Instance {
    spawn_with(store_url, SLOW_REFRESH, "").await
}

async fn spawn_with(store_url: &str, auth: &str, extra: &str) -> Instance {
    let dir = tempfile::tempdir().unwrap();
    let (http, admin) = (free_port(), free_port());
    let config = write_config(dir.path(), store_url, (http, admin), auth, extra);
    let mut child = authgate(&config).arg("serve").spawn().unwrap();
    let client = plain_client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("authgate serve exited early: {status}");
        }
        let url = format!("http://127.0.0.1:{admin}/healthz");
        let request = Request::get(url).body(Full::new(Bytes::new())).unwrap();
        if let Ok(Ok(r)) =
            tokio::time::timeout(Duration::from_secs(1), client.request(request)).await
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "instance did not become healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Instance {
        dir,
        child,
        http: SocketAddr::from(([127, 0, 0, 1], http)),
        admin: SocketAddr::from(([127, 0, 0, 1], admin)),
    }
}

async fn token_request(http: SocketAddr, path: &str, params: &[(&str, &str)]) -> Resp {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        form.append_pair(name, value);
    }
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("web:{SECRET}"));
    let request = Request::post(format!("http://{http}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {basic}"))
        .body(Full::new(Bytes::from(form.finish())))
        .unwrap();
    send(&plain_client(), request).await
}

impl Instance {
    fn config(&self) -> PathBuf {
        self.dir.path().join("gateway.toml")
    }

    async fn token(&self, params: &[(&str, &str)]) -> Resp {
        self.form("/oauth2/token", params).await
    }

    async fn form(&self, path: &str, params: &[(&str, &str)]) -> Resp {
        token_request(self.http, path, params).await
    }

    async fn login(&self) -> Value {
        self.login_as("alice").await
    }

    async fn login_as(&self, account: &str) -> Value {
        let r = self
            .token(&[
                ("grant_type", "password"),
                ("username", account),
                ("password", PASSWORD),
            ])
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    /// GET /echo with the token and `extra` headers: the status and, on 200, the headers the
    /// upstream received.
    async fn echo_with(&self, token: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        let mut request = Request::get(format!("http://{}/echo", self.http))
            .header("authorization", format!("Bearer {token}"));
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let r = send(
            &plain_client(),
            request.body(Full::new(Bytes::new())).unwrap(),
        )
        .await;
        let headers = if r.status == 200 {
            r.json()["headers"].clone()
        } else {
            Value::Null
        };
        (r.status.as_u16(), headers)
    }

    /// GET /echo with the token: the status.
    async fn echo(&self, token: &str) -> u16 {
        let request = Request::get(format!("http://{}/echo", self.http))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        send(&plain_client(), request).await.status.as_u16()
    }
}

/// Polls until `check` is true; returns how long it took. Panics after `limit`.
async fn within<F, Fut>(what: &str, limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// `host:port` of a `postgres://user:pass@host:port/db?…` URL.
fn authority(url: &str) -> &str {
    let rest = url.split_once('@').map_or(url, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap()
}

/// A relay in front of the schema's PostgreSQL, and the schema's URL through it (the relay can
/// slow the store down or cut it off).
async fn through_relay(schema: &PgSchema) -> (Relay, String) {
    let relay = Relay::start(authority(&schema.base)).await;
    let url = schema
        .url
        .replacen(authority(&schema.base), &relay.addr.to_string(), 1);
    (relay, url)
}

/// `authgate user add` at `instance`: `account` with `id` and [`PASSWORD`], `--admin` if asked.
async fn add_user(instance: &Instance, account: &str, id: &str, admin: bool) {
    let mut args = vec!["user", "add", account, "--id", id, "--password-stdin"];
    if admin {
        args.push("--admin");
    }
    cli(&instance.config(), &args, Some(&format!("{PASSWORD}\n"))).await;
}

/// `authgate client add web` at `instance` with [`SECRET`], these grants and `extra` arguments.
async fn add_web_client(instance: &Instance, grants: &[&str], extra: &[&str]) {
    let mut args = vec!["client", "add", "web", "--secret-stdin"];
    for grant in grants {
        args.extend(["--grant", grant]);
    }
    args.extend(extra);
    cli(&instance.config(), &args, Some(&format!("{SECRET}\n"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_pg, ignore = "needs PostgreSQL: set AUTHGATE_TEST_DATABASE_URL")]
async fn two_instances_act_as_one_gateway() {
    let schema = PgSchema::create("authgate_cluster").await;
    let (mut relay, relayed) = through_relay(&schema).await;

    let a = spawn(&relayed).await;
    let b = spawn(&schema.url).await;
    add_user(&a, "alice", "100", false).await;
    add_web_client(&a, &["password", "refresh_token"], &[]).await;

    // A token issued at A is accepted at B.
    let first = a.login().await;
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(b.echo(access).await, 200);

    // A refresh token from A redeems at B; again at A it fails and revokes the family.
    let refresh = first["refresh_token"].as_str().unwrap();
    let params = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let r = b.token(&params).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let second = r.json();
    let access2 = second["access_token"].as_str().unwrap();
    assert_eq!(a.echo(access2).await, 200);
    let r = a.token(&params).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid_grant");
    for instance in [&a, &b] {
        within(
            "the reused family's access token refused",
            Duration::from_secs(10),
            || async { instance.echo(access2).await == 401 },
        )
        .await;
    }

    // A revocation at A reaches B.
    let third = a.login().await;
    let access3 = third["access_token"].as_str().unwrap();
    assert_eq!(b.echo(access3).await, 200);
    let r = a.form("/oauth2/revoke", &[("token", access3)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let propagation = within(
        "revocation at A refused at B",
        Duration::from_secs(10),
        || async { b.echo(access3).await == 401 },
    )
    .await;
    eprintln!("revocation propagation A → B: {propagation:?} (LISTEN/NOTIFY; polling every 30 s)");
    assert!(
        propagation < Duration::from_secs(10),
        "with a 30 s poll, only the announcement can have been this fast"
    );

    // Identity changes made at A (the CLI) reach tokens already issued, at B: a group move
    // injects the new group, a demoted admin's token stops impersonating; nobody is signed out.
    cli(
        &a.config(),
        &[
            "user",
            "add",
            "root",
            "--id",
            "1",
            "--admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    let alice_token = a.login().await["access_token"].as_str().unwrap().to_owned();
    let root_token = a.login_as("root").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(b.echo_with(&root_token, &[("user_id", "100")]).await.0, 200);
    cli(
        &a.config(),
        &["user", "set", "alice", "--group-id", "42"],
        None,
    )
    .await;
    cli(&a.config(), &["user", "set", "root", "--admin=false"], None).await;
    let propagation = within(
        "the group move and the demotion at A seen at B",
        Duration::from_secs(2),
        || async {
            let (status, seen) = b.echo_with(&alice_token, &[]).await;
            let demoted = b.echo_with(&root_token, &[("user_id", "100")]).await.0 == 403;
            status == 200 && seen["group_id"] == "42" && demoted
        },
    )
    .await;
    eprintln!("identity change propagation A → B: {propagation:?}");
    assert_eq!(b.echo(&root_token).await, 200, "demoted, not signed out");

    // Two instances racing for one refresh token: exactly one wins.
    let raced = a.login().await;
    let token = raced["refresh_token"].as_str().unwrap();
    let params = [("grant_type", "refresh_token"), ("refresh_token", token)];
    let (ra, rb) = tokio::join!(a.token(&params), b.token(&params));
    let mut statuses = [ra.status.as_u16(), rb.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400], "{} / {}", ra.text(), rb.text());

    // Key rotation: new tokens from A verify at B, old ones still do.
    let before = a.login().await;
    let old_token = before["access_token"].as_str().unwrap().to_owned();
    cli(&a.config(), &["keys", "rotate", "--delay", "0s"], None).await;
    let old_kid = kid(&old_token);
    let deadline = Instant::now() + Duration::from_secs(10);
    let rotated = loop {
        let token = a.login().await["access_token"].as_str().unwrap().to_owned();
        if kid(&token) != old_kid {
            break token;
        }
        assert!(
            Instant::now() < deadline,
            "A did not start signing with the new key"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    within(
        "B accepts the new key's token",
        Duration::from_secs(10),
        || async { b.echo(&rotated).await == 200 },
    )
    .await;
    assert_eq!(b.echo(&old_token).await, 200, "the old key still verifies");

    // A loses its database: token requests are 503 (never invalid_grant), JWTs still pass.
    let current = a.login().await;
    let refresh = current["refresh_token"].as_str().unwrap().to_owned();
    let access = current["access_token"].as_str().unwrap().to_owned();
    relay.cut().await;
    let r = a
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"], "temporarily_unavailable");
    assert!(r.header("retry-after").is_some());
    let r = a
        .token(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(
        a.echo(&access).await,
        200,
        "JWTs validate from the cached key set"
    );
    let ready = support::get(&plain_client(), &format!("http://{}/readyz", a.admin)).await;
    assert_eq!(ready.json()["store"]["reachable"], false);
    // …and recovers by itself; the refresh token it could not redeem is still good.
    relay.restore().await;
    let recovered = within(
        "A answers token requests again",
        Duration::from_secs(30),
        || async {
            a.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
                .await
                .status
                == 200
        },
    )
    .await;
    eprintln!("A recovered {recovered:?} after the database returned");

    // The login back-off is shared: failures at A block the same guesses at B.
    for _ in 0..5 {
        let r = a
            .token(&[
                ("grant_type", "password"),
                ("username", "mallory"),
                ("password", "guess"),
            ])
            .await;
        assert_eq!(r.status, 400, "{}", r.text());
    }
    let r = b
        .token(&[
            ("grant_type", "password"),
            ("username", "mallory"),
            ("password", "guess"),
        ])
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());

    // SIGKILL mid-load: every refresh token A handed out before it died redeems at B.
    let issued = std::sync::Mutex::new(Vec::new());
    let mut a = a;
    let http = a.http;
    let load = async {
        // Not `send`: the request in flight when A dies fails, and that ends the load.
        use http_body_util::BodyExt as _;
        let client = plain_client();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("web:{SECRET}"));
        let body =
            format!("grant_type=password&username=alice&password={PASSWORD}").replace(' ', "+");
        loop {
            let request = Request::post(format!("http://{http}/oauth2/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", format!("Basic {basic}"))
                .body(Full::new(Bytes::from(body.clone())))
                .unwrap();
            let Ok(response) = client.request(request).await else {
                return;
            };
            if response.status() != 200 {
                return;
            }
            let Ok(bytes) = response.into_body().collect().await else {
                return;
            };
            let json: Value = serde_json::from_slice(&bytes.to_bytes()).unwrap();
            let token = json["refresh_token"].as_str().unwrap().to_owned();
            issued.lock().unwrap().push(token);
        }
    };
    let kill = async {
        within(
            "A has issued under load",
            Duration::from_secs(30),
            || async { issued.lock().unwrap().len() >= 20 },
        )
        .await;
        a.child.start_kill().unwrap();
        let _ = a.child.wait().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(60), async { tokio::join!(load, kill) }).await;
    let tokens = issued.lock().unwrap().clone();
    for token in &tokens {
        let r = b
            .token(&[("grant_type", "refresh_token"), ("refresh_token", token)])
            .await;
        assert_eq!(
            r.status,
            200,
            "a refresh token A issued was lost: {}",
            r.text()
        );
    }
    eprintln!(
        "{} refresh tokens issued by A before SIGKILL all redeemed at B",
        tokens.len()
    );
    assert_eq!(b.echo(&access).await, 200, "B keeps serving");

    // The instances go before the schema does.
    drop((a, b));
    drop(schema);
}

/// The session cookie value of a sign-in at `instance`'s sign-in page (plain HTTP here: the
/// test carries the cookies by hand).
async fn sign_in(instance: &Instance, account: &str) -> String {
    let base = format!("http://{}", instance.http);
    let page = send(
        &plain_client(),
        Request::get(format!("{base}/open/signin?rd=%2Fapp%2F"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.text());
    let set_cookie = page.header("set-cookie").unwrap();
    let csrf = set_cookie
        .strip_prefix("authgate_csrf=")
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .to_owned();
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf_token", &csrf)
        .append_pair("rd", "/app/")
        .append_pair("username", account)
        .append_pair("password", PASSWORD)
        .append_pair("action", "login")
        .finish();
    let r = send(
        &plain_client(),
        Request::post(format!("{base}/open/signin"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", format!("authgate_csrf={csrf}"))
            .body(Full::new(Bytes::from(form)))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let set_cookie = r.header("set-cookie").unwrap();
    set_cookie
        .strip_prefix("__Host-authgate-session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .to_owned()
}

impl Instance {
    /// GET /app/ with the session cookie: the status and the user the upstream got.
    async fn app(&self, session: &str) -> (u16, Value) {
        let request = Request::get(format!("http://{}/app/", self.http))
            .header("cookie", format!("__Host-authgate-session={session}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let r = send(&plain_client(), request).await;
        let user = if r.status == 200 {
            r.json()["headers"]["user_id"].clone()
        } else {
            Value::Null
        };
        (r.status.as_u16(), user)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_pg, ignore = "needs PostgreSQL: set AUTHGATE_TEST_DATABASE_URL")]
async fn a_session_started_at_one_instance_is_one_at_the_other() {
    let schema = PgSchema::create("authgate_cluster_sessions").await;
    let a = spawn(&schema.url).await;
    let b = spawn(&schema.url).await;
    add_user(&a, "alice", "100", false).await;
    let session = sign_in(&a, "alice").await;
    assert_eq!(a.app(&session).await, (200, Value::from("100")));
    assert_eq!(b.app(&session).await, (200, Value::from("100")));
    // `authgate session list` at B sees it; `revoke-tokens` at A ends it at B too (the
    // user's not-before travels by NOTIFY, well within the 30 s poll).
    let listed = cli(&b.config(), &["session", "list", "--user", "alice"], None).await;
    assert!(listed.contains("alice"), "{listed}");
    cli(&a.config(), &["user", "revoke-tokens", "alice"], None).await;
    let propagation = within(
        "the revocation at A ends the session at B",
        Duration::from_secs(10),
        || async { b.app(&session).await.0 == 401 },
    )
    .await;
    eprintln!("session revocation A → B: {propagation:?}");
    within(
        "the revocation at A ends the session at A",
        Duration::from_secs(10),
        || async { a.app(&session).await.0 == 401 },
    )
    .await;
}

/// The store's read outage (issue 26): while the store is slow but readable, nothing changes;
/// once it has been unreadable for longer than `auth.max_staleness`, the gateway's own tokens
/// are refused with 503 (it can no longer know whether they were revoked: fail closed), an
/// external issuer's keep working (their revocation is not in our store), and it recovers by
/// itself when the store returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_pg, ignore = "needs PostgreSQL: set AUTHGATE_TEST_DATABASE_URL")]
async fn own_tokens_fail_closed_when_the_store_stays_unreadable() {
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};

    let schema = PgSchema::create("authgate_outage").await;
    let (mut relay, relayed) = through_relay(&schema).await;
    // An external issuer with a static key set.
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let decoding = DecodingKey::from_ec_pem(pair.public_key_pem().as_bytes()).unwrap();
    let mut jwk = Jwk::from_decoding_key(&decoding, Some(Algorithm::ES256)).unwrap();
    jwk.common.key_id = Some("ext-1".into());
    let keys = tempfile::tempdir().unwrap();
    let jwks = keys.path().join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap(),
    )
    .unwrap();
    let issuer = format!(
        "[[issuers]]\nissuer = \"https://idp.test\"\njwks_file = \"{}\"\nalgorithms = [\"ES256\"]\nsubject_prefix = \"ext:\"\n",
        jwks.display()
    );
    let auth = "refresh_interval = \"250ms\"\nmax_staleness = \"4s\"";
    let a = spawn_with(&relayed, auth, &issuer).await;
    add_user(&a, "alice", "100", false).await;
    add_web_client(&a, &["password"], &[]).await;
    let own = a.login().await["access_token"].as_str().unwrap().to_owned();
    let now = jsonwebtoken::get_current_timestamp();
    let claims =
        serde_json::json!({"iss": "https://idp.test", "sub": "42", "exp": now + 600, "iat": now});
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ext-1".into());
    let encoding = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
    let external = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    assert_eq!(a.echo(&own).await, 200);
    let (status, headers) = a.echo_with(&external, &[]).await;
    assert_eq!((status, headers["user_id"].as_str()), (200, Some("ext:42")));

    // Slow but readable (every chunk 40 ms late, both ways: a reload of several queries takes
    // hundreds of milliseconds): the snapshot keeps being renewed, nothing is refused.
    relay.slow_down(Duration::from_millis(40));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(a.echo(&own).await, 200, "slow is not stale");
    relay.slow_down(Duration::ZERO);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Unreadable: within max_staleness the last snapshot still answers…
    relay.cut().await;
    let cut = Instant::now();
    assert_eq!(a.echo(&own).await, 200, "fresh enough right after the cut");
    // …then own tokens fail closed with 503, never 401 (the token is not wrong).
    let flipped = within(
        "own tokens refused with 503",
        Duration::from_secs(10),
        || async { a.echo(&own).await == 503 },
    )
    .await;
    eprintln!("own tokens refused {flipped:?} after the cut (max_staleness 4s)");
    assert!(
        cut.elapsed() >= Duration::from_secs(2),
        "not before max_staleness"
    );
    let request = Request::get(format!("http://{}/echo", a.http))
        .header("authorization", format!("Bearer {own}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send(&plain_client(), request).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"], "temporarily_unavailable");
    let (status, _) = a.echo_with(&external, &[]).await;
    assert_eq!(
        status, 200,
        "an external issuer's tokens do not depend on our store"
    );

    // The store returns: own tokens pass again, by themselves.
    relay.restore().await;
    let back = within(
        "own tokens accepted again",
        Duration::from_secs(30),
        || async { a.echo(&own).await == 200 },
    )
    .await;
    eprintln!("own tokens accepted {back:?} after the store returned");
}

/// What A reported to a client before it was killed.
#[derive(Default)]
struct Reported {
    /// (opaque access token, its refresh token) of password grants.
    grants: Vec<(String, String)>,
    /// Refresh tokens A answered 200 to revoking (RFC 7009).
    revoked: Vec<String>,
    /// Authorization codes A sent the browser back with.
    codes: Vec<String>,
    /// Token-exchange (admin acting as alice) access tokens.
    exchanged: Vec<String>,
}

impl Reported {
    fn len(&self) -> usize {
        self.grants.len() + self.revoked.len() + self.codes.len() + self.exchanged.len()
    }
}

/// One step of the load at `http`: the `i`th operation, recorded only once its answer came
/// back whole. `None` when A did not answer (it is dying): the load ends.
async fn crash_load_step(
    http: SocketAddr,
    i: usize,
    session: &str,
    admin: &str,
    reported: &std::sync::Mutex<Reported>,
) -> Option<()> {
    use http_body_util::BodyExt as _;
    let client = plain_client();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("web:{SECRET}"));
    let post = |path: &str, params: &[(&str, &str)]| {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (name, value) in params {
            form.append_pair(name, value);
        }
        Request::post(format!("http://{http}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", format!("Basic {basic}"))
            .body(Full::new(Bytes::from(form.finish())))
            .unwrap()
    };
    // Every other grant's refresh token is revoked (steps 1, 9, 17, …; the others grant).
    let last_refresh = (i % 8 == 1)
        .then(|| reported.lock().unwrap().grants.last().map(|g| g.1.clone()))
        .flatten();
    let request = match (i % 4, &last_refresh) {
        (1, Some(refresh)) => post("/oauth2/revoke", &[("token", refresh)]),
        (2, _) => Request::get(format!(
            "http://{http}/open/authorize/index?response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s{i}"
        ))
        .header("cookie", format!("__Host-authgate-session={session}"))
        .body(Full::new(Bytes::new()))
        .unwrap(),
        (3, _) => post(
            "/oauth2/token",
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                ("subject_token", admin),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
                ("requested_subject", "100"),
            ],
        ),
        _ => post(
            "/oauth2/token",
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        ),
    };
    let response = client.request(request).await.ok()?;
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.ok()?.to_bytes();
    let mut reported = reported.lock().unwrap();
    match (i % 4, last_refresh) {
        (1, Some(refresh)) if status == 200 => reported.revoked.push(refresh),
        (2, _) if status == 303 => {
            let location = location?;
            let query = location.split_once('?')?.1;
            let code = form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "code")?
                .1
                .into_owned();
            reported.codes.push(code);
        }
        (3, _) if status == 200 => {
            let json: Value = serde_json::from_slice(&body).ok()?;
            reported
                .exchanged
                .push(json["access_token"].as_str()?.to_owned());
        }
        (0 | 1, _) if status == 200 => {
            let json: Value = serde_json::from_slice(&body).ok()?;
            let access = json["access_token"].as_str()?.to_owned();
            let refresh = json["refresh_token"].as_str()?.to_owned();
            reported.grants.push((access, refresh));
        }
        (2 | 3, _) => {}
        _ => return None,
    }
    Some(())
}

/// SIGKILL mid-load on PostgreSQL (issue 26 part 4): whatever A reported to a client before
/// it died is whole at B — opaque access tokens and refresh tokens of password grants,
/// RFC 7009 revocations, authorization codes, and the audit record of every token exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_pg, ignore = "needs PostgreSQL: set AUTHGATE_TEST_DATABASE_URL")]
async fn sigkill_loses_nothing_a_client_was_told() {
    let schema = PgSchema::create("authgate_crash").await;
    let opaque = "[dialects.oauth2]\ntoken_format = \"opaque\"";
    let mut a = spawn_with(&schema.url, SLOW_REFRESH, opaque).await;
    let b = spawn_with(&schema.url, SLOW_REFRESH, opaque).await;
    add_user(&a, "alice", "100", false).await;
    add_user(&a, "boss", "1", true).await;
    let grants = [
        "password",
        "refresh_token",
        "authorization_code",
        "token_exchange",
    ];
    add_web_client(&a, &grants, &["--redirect-uri", "https://app.example/cb"]).await;
    let session = sign_in(&a, "alice").await;
    let admin = a.login_as("boss").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let reported = std::sync::Mutex::new(Reported::default());
    let http = a.http;
    let load = async {
        for i in 0.. {
            if crash_load_step(http, i, &session, &admin, &reported)
                .await
                .is_none()
            {
                return;
            }
        }
    };
    let kill = async {
        within(
            "A has answered under load",
            Duration::from_secs(60),
            || async { reported.lock().unwrap().len() >= 40 },
        )
        .await;
        a.child.start_kill().unwrap();
        let _ = a.child.wait().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(90), async { tokio::join!(load, kill) }).await;
    let reported = reported.into_inner().unwrap();
    eprintln!(
        "before SIGKILL A reported {} grants, {} revocations, {} codes, {} exchanges",
        reported.grants.len(),
        reported.revoked.len(),
        reported.codes.len(),
        reported.exchanged.len()
    );
    assert!(!reported.codes.is_empty() && !reported.exchanged.is_empty());
    assert!(reported.revoked.len() < reported.grants.len());

    for (access, refresh) in &reported.grants {
        if reported.revoked.contains(refresh) {
            let r = b
                .token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
                .await;
            assert_eq!(
                r.status,
                400,
                "a revoked refresh token redeemed: {}",
                r.text()
            );
            continue;
        }
        assert_eq!(b.echo(access).await, 200, "an opaque access token was lost");
        let r = b
            .token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
            .await;
        assert_eq!(r.status, 200, "a refresh token was lost: {}", r.text());
    }
    for code in &reported.codes {
        let r = b
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", "https://app.example/cb"),
            ])
            .await;
        assert_eq!(r.status, 200, "a code was lost: {}", r.text());
    }
    for token in &reported.exchanged {
        let (status, headers) = b.echo_with(token, &[]).await;
        assert_eq!(status, 200, "an exchanged token was lost");
        assert_eq!(headers["user_id"], "100");
    }
    let audit = cli(
        &b.config(),
        &[
            "audit",
            "--kind",
            "token.exchange",
            "--json",
            "--limit",
            "10000",
        ],
        None,
    )
    .await;
    assert!(
        audit.lines().count() >= reported.exchanged.len(),
        "every reported token exchange is audited: {} records for {} exchanges",
        audit.lines().count(),
        reported.exchanged.len()
    );
    drop((a, b));
    drop(schema);
}
