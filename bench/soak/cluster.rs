//! The soak's stage: two authgate processes on one PostgreSQL database (through one TCP relay
//! the chaos can cut), the recording upstream they forward to, and the CLI.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

pub const KEY_SECRET: &str = "soak key secret, at least 32 characters";
/// The `app` dialect's shared storage secret (the same on every instance).
pub const STORAGE_SECRET: &str = "soak storage secret, at least 32 characters";
pub const PASSWORD: &str = "correct horse battery";
pub const WEB_SECRET: &str = "web-secret-0123456789abcdef";
pub const PASSPORT_SECRET: &str = "passport-secret-0123456789abcdef";
pub const MOBILE_CLIENT: &str = "MOBrBDS8blbauoSck0ZfDbtuzpyT";

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A free port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// A TCP relay to the database that can be cut (listener and every open connection) and
/// restored on the same port.
pub struct Relay {
    pub addr: SocketAddr,
    target: String,
    tasks: Option<JoinSet<()>>,
}

impl Relay {
    pub async fn start(target: &str) -> Result<Relay, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut relay = Relay {
            addr,
            target: target.to_owned(),
            tasks: None,
        };
        relay.serve(listener);
        Ok(relay)
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target.clone();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        self.tasks = Some(tasks);
    }

    /// Drops the listener and every relayed connection.
    pub async fn cut(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.shutdown().await;
        }
    }

    pub async fn restore(&mut self) -> Result<(), Error> {
        let listener = TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }
}

/// The upstream every route forwards to: reads the whole body (streamed uploads too), answers
/// 200 with the identity it received. Killed and restarted by the chaos.
pub struct Upstream {
    pub port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
    pub requests: Arc<AtomicU64>,
}

impl Upstream {
    pub async fn start(port: u16) -> Result<Upstream, Error> {
        let mut upstream = Upstream {
            port,
            task: None,
            requests: Arc::new(AtomicU64::new(0)),
        };
        upstream.restart().await?;
        Ok(upstream)
    }

    pub async fn restart(&mut self) -> Result<(), Error> {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await?;
        let requests = Arc::clone(&self.requests);
        self.task = Some(tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let requests = Arc::clone(&requests);
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        requests.fetch_add(1, Ordering::Relaxed);
                        answer(request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
        Ok(())
    }

    /// Stops listening and drops every open connection (aborting the task drops its JoinSet).
    pub fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let user = request
        .headers()
        .get("user_id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let received = request.into_body().collect().await?.to_bytes().len();
    let body = format!("{{\"user_id\":\"{user}\",\"bytes\":{received}}}");
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// One authgate process: its config, ports, log, and the process while it runs.
pub struct Instance {
    pub name: &'static str,
    pub config: PathBuf,
    pub http: SocketAddr,
    pub admin: SocketAddr,
    pub log: PathBuf,
    pub child: Option<Child>,
    /// When the running process started (the RSS criterion looks at a settled process).
    pub started: Instant,
}

impl Instance {
    /// Writes the instance's config (`valid`) into `dir`.
    pub fn new(name: &'static str, dir: &Path, store_url: &str, upstream: u16) -> Instance {
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let instance = Instance {
            name,
            config: dir.join(format!("{name}.toml")),
            http,
            admin,
            log: dir.join(format!("{name}.log")),
            child: None,
            started: Instant::now(),
        };
        instance.write_config(store_url, upstream, "");
        instance
    }

    /// The config; `junk` appended makes it invalid (the chaos' bad reload).
    pub fn write_config(&self, store_url: &str, upstream: u16, junk: &str) {
        let toml = format!(
            r#"[server]
listen = "127.0.0.1:0"
plain_listen = "{http}"
[tls]
cert = "certs/{name}-cert.pem"
key = "certs/{name}-key.pem"
dev_self_signed = true
[admin]
listen = "{admin}"
[log]
level = "warn"
access_log = false
[auth]
issuer = "https://soak.test"
token_headers = ["access-token"]
refresh_interval = "1s"
token_cache_entries = 2000
[store]
url = "{store_url}"
[dialects.mobile]
enabled = true
token_format = "opaque"
[dialects.passport]
enabled = true
rsa_bits = 2048
login = "phone"
[dialects.app]
enabled = true
[[routes]]
prefix = "/api"
upstream = "http://127.0.0.1:{upstream}"
[[routes]]
prefix = "/orders"
upstream = "http://127.0.0.1:{upstream}/v2"
strip_prefix = true
[[routes]]
prefix = "/upload"
upstream = "http://127.0.0.1:{upstream}"
[[routes]]
prefix = "/echo"
upstream = "builtin:echo"
{junk}
"#,
            http = self.http,
            admin = self.admin,
            name = self.name,
        );
        std::fs::write(&self.config, toml).expect("the instance's config is written");
    }

    /// Starts `bin serve` and waits until `/healthz` answers.
    pub async fn start(&mut self, bin: &Path) -> Result<(), Error> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(bin)
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env("AUTHGATE_KEY_SECRET", KEY_SECRET)
            .env("AUTHGATE_STORAGE_SECRET", STORAGE_SECRET)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        self.child = Some(child);
        self.started = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                return Err(format!("{} exited at start: {status}", self.name).into());
            }
            if crate::load::get_status(&format!("http://{}/healthz", self.admin)).await == Some(200)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("{} did not become healthy", self.name).into())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// SIGKILL, and reaped.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// SIGTERM (graceful drain), waited for (SIGKILL after 30 s).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                signal("TERM", pid);
            }
            if tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .is_err()
            {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }

    /// SIGHUP: reload the config.
    pub fn reload(&self) {
        if let Some(pid) = self.pid() {
            signal("HUP", pid);
        }
    }
}

fn signal(name: &str, pid: u32) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
}

/// Runs `bin --config config ARGS` (stdin from `input`) to completion.
pub async fn cli(
    bin: &Path,
    config: &Path,
    args: &[&str],
    input: Option<&str>,
) -> Result<String, Error> {
    use tokio::io::AsyncWriteExt as _;
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("AUTHGATE_KEY_SECRET", KEY_SECRET)
        .env("AUTHGATE_STORAGE_SECRET", STORAGE_SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    if let Some(input) = input {
        stdin.write_all(input.as_bytes()).await?;
    }
    drop(stdin);
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        return Err(format!(
            "authgate {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Users and clients for every part of the load (through instance `config`).
pub async fn populate(bin: &Path, config: &Path) -> Result<(), Error> {
    let password = format!("{PASSWORD}\n");
    cli(
        bin,
        config,
        &[
            "user",
            "add",
            "alice",
            "--id",
            "100",
            "--phone",
            "138 0000 0001",
            "--group-id",
            "7",
            "--password-stdin",
        ],
        Some(&password),
    )
    .await?;
    cli(
        bin,
        config,
        &[
            "user",
            "add",
            "boss",
            "--id",
            "1",
            "--admin",
            "--password-stdin",
        ],
        Some(&password),
    )
    .await?;
    let web = [
        "client",
        "add",
        "web",
        "--grant",
        "password",
        "--grant",
        "refresh_token",
        "--grant",
        "token_exchange",
        "--secret-stdin",
    ];
    cli(bin, config, &web, Some(&format!("{WEB_SECRET}\n"))).await?;
    let mobile = [
        "client",
        "add",
        MOBILE_CLIENT,
        "--public",
        "--grant",
        "password",
        "--grant",
        "refresh_token",
    ];
    cli(bin, config, &mobile, None).await?;
    let passport = [
        "client",
        "add",
        "2",
        "--grant",
        "password",
        "--grant",
        "refresh_token",
        "--secret-stdin",
    ];
    cli(
        bin,
        config,
        &passport,
        Some(&format!("{PASSPORT_SECRET}\n")),
    )
    .await?;
    let app = [
        "client", "add", "app", "--public", "--app-id", "app-1", "--grant", "password",
    ];
    cli(bin, config, &app, None).await?;
    Ok(())
}

/// `VmRSS` in KiB and the number of open file descriptors of `pid`.
pub fn usage(pid: u32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, fds))
}
