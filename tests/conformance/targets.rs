//! The comparison targets: nginx as a reverse proxy and HAProxy, configured as in
//! `bench/run.sh` (one worker, HTTP/1.1 keep-alive to the upstream), in front of the same stub
//! upstream as authgate. Each runs as a child process in a temp dir and is killed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// A program found on PATH or in the sbin directories Debian installs daemons into.
pub fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub struct Target {
    pub name: &'static str,
    pub addr: SocketAddr,
    child: Child,
    _dir: TempDir,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn open_dir() -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    // nginx's workers run as `nobody` when the master is root: they need the temp paths.
    set_mode(dir.path(), 0o777);
    dir
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
}

async fn wait_listening(name: &str, addr: SocketAddr, child: &mut Child, log: &Path) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{name} exited ({status}) before listening:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{name} did not listen on {addr} within 10 s:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// nginx-proxy of `bench/run.sh` to `upstream`.
pub async fn nginx(bin: &Path, upstream: SocketAddr) -> Target {
    let dir = open_dir();
    let d = dir.path().display();
    let port = free_port();
    for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        let p = dir.path().join(sub);
        std::fs::create_dir_all(&p).expect("nginx temp dir");
        set_mode(&p, 0o777);
    }
    let conf = format!(
        "worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/nginx.err warn;
events {{ worker_connections 1024; }}
http {{ access_log off; keepalive_requests 10000000;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  upstream u {{ server {upstream}; keepalive 16; }}
  server {{ listen 127.0.0.1:{port};
    location / {{ proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }} }}
"
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("write nginx.conf");
    let log = dir.path().join("nginx.err");
    let mut child = Command::new(bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(&log)
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_listening("nginx", addr, &mut child, &log).await;
    Target {
        name: "nginx",
        addr,
        child,
        _dir: dir,
    }
}

/// haproxy-plain of `bench/run.sh` to `upstream`.
pub async fn haproxy(bin: &Path, upstream: SocketAddr) -> Target {
    let dir = open_dir();
    let port = free_port();
    let conf = format!(
        "global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:{port}
  default_backend be
backend be
  http-reuse always
  server s1 {upstream}
"
    );
    let conf_path = dir.path().join("haproxy.cfg");
    std::fs::write(&conf_path, conf).expect("write haproxy.cfg");
    let log = dir.path().join("haproxy.log");
    let out = std::fs::File::create(&log).expect("haproxy log");
    let mut child = Command::new(bin)
        .arg("-db")
        .arg("-f")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log fd"))
        .stderr(out)
        .spawn()
        .expect("start haproxy");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_listening("haproxy", addr, &mut child, &log).await;
    Target {
        name: "HAProxy",
        addr,
        child,
        _dir: dir,
    }
}
