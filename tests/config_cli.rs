//! The `authgate` binary: `check` (route table, config errors naming the key path and the
//! file), environment overrides, and `serve` end to end including SIGTERM.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use support::*;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_authgate");

/// A command for the binary with every inherited AUTHGATE__* variable removed.
fn authgate() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("AUTHGATE") {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c.kill_on_drop(true);
    c
}

async fn run(mut c: Command) -> Output {
    within("authgate command", c.output()).await.unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Write `toml` as gateway.toml (plus a test cert) into a fresh temp dir.
fn config_dir(toml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write_test_cert(dir.path());
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, toml).unwrap();
    (dir, path)
}

const HEAD: &str =
    "[server]\nlisten = \"127.0.0.1:0\"\n\n[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n";

fn valid_toml() -> String {
    format!(
        "{HEAD}\n[[routes]]\nname = \"api\"\nprefix = \"/api\"\nupstream = \"http://127.0.0.1:9/base\"\nmethods = [\"GET\", \"POST\"]\n\n\
         [[routes]]\nprefix = \"/public/echo\"\nupstream = \"builtin:echo\"\nauth = \"public\"\n"
    )
}

/// Run `check` on `toml`; expect exit 1 and exactly one stderr line mentioning every `needles`
/// item and the config file's name.
async fn expect_check_error(toml: &str, needles: &[&str]) -> String {
    let (_dir, path) = config_dir(toml);
    let mut c = authgate();
    c.arg("check").arg("--config").arg(&path);
    let out = run(c).await;
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "check should exit 1; stdout {:?} stderr {err:?}\n--- config ---\n{toml}",
        text(&out.stdout)
    );
    eprintln!("check said: {}", err.trim());
    let lines: Vec<&str> = err.trim().lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "exactly one stderr line expected, got {err:?}"
    );
    for n in needles {
        assert!(err.contains(n), "stderr should mention {n:?}: {err:?}");
    }
    assert!(
        err.contains("gateway.toml"),
        "stderr should name the config file: {err:?}"
    );
    err
}

#[tokio::test]
async fn check_valid_config_prints_route_table() {
    let (_dir, path) = config_dir(&valid_toml());
    let mut c = authgate();
    c.arg("check").arg("--config").arg(&path);
    let out = run(c).await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "check failed: stdout {stdout:?} stderr {:?}",
        text(&out.stderr)
    );
    for needle in [
        "/api",
        "http://127.0.0.1:9/base",
        "/public/echo",
        "builtin:echo",
    ] {
        assert!(
            stdout.contains(needle),
            "route table should show {needle:?}: {stdout}"
        );
    }
}

/// `authgate explain` from the command line: the route, the policy and what the upstream gets.
#[tokio::test]
async fn explain_prints_the_route_and_the_upstream_request() {
    let (_dir, path) = config_dir(&valid_toml());
    let mut c = authgate();
    c.arg("explain")
        .arg("--config")
        .arg(&path)
        .arg("https://gw.test/public/echo/a?b=1")
        .args([
            "-H",
            "Connection: close, X-Hop",
            "-H",
            "X-Hop: 1",
            "-H",
            "user_id: 7",
        ]);
    let out = run(c).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    for needle in [
        "route:    \"/public/echo\"",
        "token:    not needed (public route)",
        "stripped: connection, x-hop, user_id",
        "the upstream receives:",
        "x-forwarded-proto: https",
    ] {
        assert!(stdout.contains(needle), "{needle:?} in\n{stdout}");
    }
    let mut c = authgate();
    c.arg("explain")
        .arg("--config")
        .arg(&path)
        .arg("/api/x")
        .args(["-X", "DELETE"]);
    let out = run(c).await;
    assert!(
        text(&out.stdout).contains("refused:  405"),
        "{}",
        text(&out.stdout)
    );
}

/// The shipped configurations (development and the deployment template) stay valid.
#[tokio::test]
async fn shipped_configs_pass_check() {
    for file in ["gateway.toml", "deploy/gateway.toml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let mut c = authgate();
        c.arg("check").arg("--config").arg(&path);
        let out = run(c).await;
        assert!(
            out.status.success(),
            "{file}: stdout {:?} stderr {:?}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[tokio::test]
async fn check_lists_everything_the_gateway_answers_itself_then_the_routes_in_match_order() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.toml");
    let mut c = authgate();
    c.arg("check").arg("--config").arg(&path);
    let out = text(&run(c).await.stdout);
    for (path, dialect) in [
        ("/auth/token", "mobile"),
        ("/oauth/token", "passport"),
        ("/token/id", "app"),
        ("/token/login", "app"),
        ("/token/user", "app"),
        ("/oauth2/token", "oauth2"),
        ("/open/authorize/index", "oauth2"),
        ("/.well-known/oauth-authorization-server", "oauth2"),
        ("/.well-known/jwks.json", "-"),
    ] {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(path))
            .unwrap_or_else(|| panic!("{path} not listed: {out}"));
        assert!(line.contains(dialect), "{line}");
    }
    // Routes numbered in the order they are matched, with their place in the file.
    let routes: Vec<&str> = out.lines().filter(|l| l.contains("routes[")).collect();
    assert!(routes[0].trim_start().starts_with("1  routes[1]"), "{out}");
    assert!(routes[1].trim_start().starts_with("2  routes[0]"), "{out}");
    assert!(!out.contains("Oauth2("), "internal names leak: {out}");
}

#[tokio::test]
async fn check_warns_about_risky_settings() {
    let toml = format!(
        "{HEAD}trusted_proxies = []\n\n[[routes]]\nprefix = \"/api\"\nupstream = \"http://10.1.2.3:8080\"\n"
    )
    .replace("listen = \"127.0.0.1:0\"\n", "listen = \"127.0.0.1:0\"\ntrusted_proxies = [\"0.0.0.0/0\"]\n")
    .replace("trusted_proxies = []\n", "");
    let (_dir, path) = config_dir(&toml);
    let mut c = authgate();
    c.arg("check").arg("--config").arg(&path);
    let out = run(c).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("warning: server.trusted_proxies[0]"),
        "{stdout}"
    );
    assert!(stdout.contains("warning: routes[0]"), "{stdout}");
}

#[tokio::test]
async fn check_warns_about_unaddressed_routes_once_a_client_has_resources() {
    let toml = format!(
        "{}\n[[routes]]\nname = \"orders\"\nprefix = \"/orders\"\nupstream = \"builtin:echo\"\naudiences = [\"https://api.example/orders\"]\n",
        valid_toml()
    );
    let (dir, path) = config_dir(&toml);
    let check = || async {
        let mut c = authgate();
        c.arg("check").arg("--config").arg(&path);
        let out = run(c).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    // No store yet: nothing is created, nothing to warn about.
    let stdout = check().await;
    assert!(!stdout.contains("RFC 8707"), "{stdout}");
    assert!(!dir.path().join("data").exists(), "check created the store");
    // A client without resources: still nothing.
    let mut c = authgate();
    c.args(["--config"]).arg(&path);
    c.args(["client", "add", "plain", "--grant", "client_credentials"]);
    assert!(run(c).await.status.success());
    assert!(!check().await.contains("RFC 8707"));
    // One with resources: the authenticated route without audiences is named, the route
    // with audiences and the public one are not.
    let mut c = authgate();
    c.args(["--config"]).arg(&path);
    c.args(["client", "add", "res", "--grant", "client_credentials"]);
    c.args(["--resource", "https://api.example/orders"]);
    let out = run(c).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = check().await;
    assert!(
        stdout.contains("warning: routes[0] `api` is authenticated but has no `audiences`"),
        "{stdout}"
    );
    assert!(!stdout.contains("warning: routes[1]"), "{stdout}");
    assert!(!stdout.contains("warning: routes[2]"), "{stdout}");
}

#[tokio::test]
async fn check_uses_gateway_toml_in_current_dir_by_default() {
    let (dir, _path) = config_dir(&valid_toml());
    let mut c = authgate();
    c.arg("check").current_dir(dir.path());
    let out = run(c).await;
    assert!(
        out.status.success(),
        "stdout {:?} stderr {:?}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("/public/echo"));
}

#[tokio::test]
async fn check_missing_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let mut c = authgate();
    c.arg("check").arg("--config").arg(&path);
    let out = run(c).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err:?}");
    assert!(err.contains("gateway.toml"), "{err:?}");
}

#[tokio::test]
async fn unknown_key_is_named() {
    let toml = valid_toml().replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\nlisn = \"x\"",
    );
    expect_check_error(&toml, &["server.lisn"]).await;
}

#[tokio::test]
async fn proxy_protocol_needs_trusted_proxies() {
    let toml = valid_toml().replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\nproxy_protocol = true",
    );
    expect_check_error(&toml, &["server.proxy_protocol", "trusted_proxies"]).await;
    let toml = valid_toml().replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\nmax_connections_per_ip = \"many\"",
    );
    expect_check_error(&toml, &["server.max_connections_per_ip"]).await;
}

#[tokio::test]
async fn unknown_route_key_is_named() {
    let toml = format!(
        "{HEAD}\n[[routes]]\nprefix = \"/a\"\nupstream = \"builtin:echo\"\n\n\
         [[routes]]\nprefix = \"/b\"\nupstream = \"builtin:echo\"\nstrip_prefx = true\n"
    );
    expect_check_error(&toml, &["routes[1].strip_prefx"]).await;
}

#[tokio::test]
async fn login_session_settings_are_checked() {
    let both = format!(
        "{}\n[login]\nsession_ttl = \"1h\"\n\n[dialects.oauth2]\nlogin_session_ttl = \"2h\"\n",
        valid_toml()
    );
    expect_check_error(
        &both,
        &["login.session_ttl", "dialects.oauth2.login_session_ttl"],
    )
    .await;
    let idle = format!(
        "{}\n[login]\nsession_ttl = \"10m\"\nidle_timeout = \"1h\"\n",
        valid_toml()
    );
    expect_check_error(&idle, &["login.idle_timeout"]).await;
    let unknown = format!("{}\n[login]\nsession_lifetime = \"1h\"\n", valid_toml());
    expect_check_error(&unknown, &["login.session_lifetime"]).await;
}

#[tokio::test]
async fn bad_duration_is_named() {
    let toml = valid_toml().replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\nidle_timeout = \"10 parsecs\"",
    );
    expect_check_error(&toml, &["server.idle_timeout"]).await;
}

#[tokio::test]
async fn bad_route_duration_is_named() {
    let toml = format!(
        "{HEAD}\n[[routes]]\nprefix = \"/a\"\nupstream = \"builtin:echo\"\ntimeout = \"soon\"\n"
    );
    expect_check_error(&toml, &["routes[0].timeout"]).await;
}

#[tokio::test]
async fn bad_byte_size_is_named() {
    let toml = valid_toml().replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\nmax_body_bytes = \"lots\"",
    );
    expect_check_error(&toml, &["server.max_body_bytes"]).await;
}

#[tokio::test]
async fn invalid_upstream_url_is_named() {
    for bad in ["not a url", "ftp://127.0.0.1/x", "builtin:nope"] {
        let toml = format!(
            "{HEAD}\n[[routes]]\nprefix = \"/a\"\nupstream = \"builtin:echo\"\n\n\
             [[routes]]\nprefix = \"/b\"\nupstream = \"{bad}\"\n"
        );
        expect_check_error(&toml, &["routes[1].upstream"]).await;
    }
}

#[tokio::test]
async fn missing_required_route_key_is_named() {
    let toml = format!(
        "{HEAD}\n[[routes]]\nprefix = \"/a\"\nupstream = \"builtin:echo\"\n\n[[routes]]\nprefix = \"/b\"\n"
    );
    expect_check_error(&toml, &["routes[1].upstream"]).await;
}

#[tokio::test]
async fn session_route_settings_are_checked() {
    let route = |extra: &str, top: &str| {
        format!(
            "{HEAD}{top}\n[[routes]]\nprefix = \"/a\"\nupstream = \"builtin:echo\"\n\n\
             [[routes]]\nprefix = \"/app\"\nupstream = \"builtin:echo\"\n{extra}\n"
        )
    };
    for (extra, top, key, why) in [
        (
            "auth = \"session\"\nscopes = [\"read\"]",
            "",
            "routes[1].scopes",
            "reads none",
        ),
        (
            "auth = \"session\"\naudiences = [\"https://api\"]",
            "",
            "routes[1].audiences",
            "session_or_bearer",
        ),
        (
            "auth = \"session\"\nallow_clients = true",
            "",
            "routes[1].allow_clients",
            "bearer tokens",
        ),
        (
            "session_ttl = \"5m\"",
            "",
            "routes[1].session_ttl",
            "only a session route",
        ),
        (
            "auth = \"session\"\nsession_ttl = \"2h\"",
            "\n[login]\nsession_ttl = \"1h\"\n",
            "routes[1].session_ttl",
            "may only shorten login.session_ttl",
        ),
        (
            "auth = \"session\"\nidle_timeout = \"20m\"",
            "\n[login]\nidle_timeout = \"10m\"\n",
            "routes[1].idle_timeout",
            "may only shorten login.idle_timeout",
        ),
        (
            "auth = \"session\"",
            "\n[dialects.oauth2.paths]\nsignin = \"\"\n",
            "routes[1].auth",
            "needs the sign-in page",
        ),
        (
            "auth = \"sessions\"",
            "",
            "routes[1].auth",
            "\"session_or_bearer\"",
        ),
    ] {
        let err = expect_check_error(&route(extra, top), &[key]).await;
        assert!(err.contains(why), "{extra}: {err:?}");
    }
    // A session route with scopes for its bearer tokens, and a shorter lifetime, is fine.
    let good = route(
        "auth = \"session_or_bearer\"\nscopes = [\"read\"]\nsession_ttl = \"10m\"\nidle_timeout = \"5m\"",
        "",
    );
    let (_dir, path) = config_dir(&good);
    let mut c = authgate();
    c.arg("check").arg("--config").arg(&path);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("session_or_bearer"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn forward_auth_settings_are_checked() {
    let config = |table: &str, upstream: &str| {
        format!("{HEAD}{table}\n[[routes]]\nprefix = \"/a\"\nupstream = \"{upstream}\"\n")
    };
    for (table, upstream, key, why) in [
        (
            "",
            "none",
            "routes[0].upstream",
            "needs a [forward_auth] table",
        ),
        (
            "\n[forward_auth]\npath = \"/check/\"\n",
            "none",
            "forward_auth.path",
            "normalised",
        ),
        (
            "\n[forward_auth]\nallow_from = [\"everyone\"]\n",
            "none",
            "forward_auth.allow_from[0]",
            "CIDR",
        ),
        (
            "\n[forward_auth]\nbrowser_response = \"302\"\n",
            "none",
            "forward_auth.browser_response",
            "\"redirect\"",
        ),
        (
            "\n[forward_auth]\ncookie_domain = \"com\"\n",
            "none",
            "forward_auth.cookie_domain",
            "domain name",
        ),
        (
            "\n[forward_auth]\nallowed_return_hosts = [\"https://x\"]\n",
            "none",
            "forward_auth.allowed_return_hosts[0]",
            "host name",
        ),
        ("\n[forward_auth]\nallow = []\n", "none", "allow", "unknown"),
    ] {
        let err = expect_check_error(&config(table, upstream), &[key]).await;
        assert!(err.contains(why), "{table}: {err:?}");
    }
    let (_dir, path) = config_dir(&config(
        "\n[forward_auth]\ncookie_domain = \".example.com\"\n",
        "none",
    ));
    let mut c = authgate();
    c.arg("check").arg("--config").arg(&path);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("forward-auth: /_authgate/check"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn bad_allowed_groups_are_named() {
    let route = |groups: &str, auth: &str| {
        format!(
            "{HEAD}\n[[routes]]\nprefix = \"/a\"\nupstream = \"builtin:echo\"\n\n\
             [[routes]]\nprefix = \"/b\"\nupstream = \"builtin:echo\"\nauth = \"{auth}\"\nallowed_groups = {groups}\n"
        )
    };
    for (groups, why) in [
        ("[7, \"\"]", "allowed_groups[1]: an empty string"),
        ("[\"idp: 7\"]", "never be a forwarded group"),
        ("[7, 12, \"7\"]", "allowed_groups[2]: `7` is listed twice"),
        ("[1.5]", "a group id"),
        ("[true]", "a group id"),
    ] {
        let err = expect_check_error(
            &route(groups, "authenticated"),
            &["routes[1].allowed_groups"],
        )
        .await;
        assert!(err.contains(why), "{groups}: {err:?}");
    }
    let err = expect_check_error(&route("[7]", "public"), &["routes[1].allowed_groups"]).await;
    assert!(err.contains("public route"), "{err:?}");
    // Integers and prefixed strings together, on an admin route too.
    let (_dir, path) = config_dir(&route("[7, 12, \"idp:7\"]", "admin"));
    let mut c = authgate();
    c.arg("check").arg("--config").arg(&path);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[tokio::test]
async fn missing_required_tls_key_is_named() {
    let toml = "[server]\nlisten = \"127.0.0.1:0\"\n\n[tls]\nkey = \"key.pem\"\n";
    expect_check_error(toml, &["tls.cert"]).await;
}

#[tokio::test]
async fn prefix_must_start_with_slash() {
    let toml = format!("{HEAD}\n[[routes]]\nprefix = \"api\"\nupstream = \"builtin:echo\"\n");
    expect_check_error(&toml, &["routes[0].prefix"]).await;
}

#[tokio::test]
async fn duplicate_routes_are_rejected() {
    let toml = format!(
        "{HEAD}\n[[routes]]\nprefix = \"/a\"\nupstream = \"builtin:echo\"\n\n\
         [[routes]]\nprefix = \"/a\"\nupstream = \"http://127.0.0.1:9\"\n"
    );
    let err = expect_check_error(&toml, &["routes["]).await;
    assert!(
        err.to_lowercase().contains("duplicate"),
        "should say duplicate: {err:?}"
    );
}

#[tokio::test]
async fn invalid_trusted_proxy_cidr_is_named() {
    let toml = valid_toml().replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\ntrusted_proxies = [\"10.0.0.0/99\"]",
    );
    expect_check_error(&toml, &["server.trusted_proxies"]).await;
}

#[tokio::test]
async fn env_override_replaces_file_value() {
    // The file's listen value is unusable; the override makes the config valid.
    let toml = valid_toml().replace("listen = \"127.0.0.1:0\"", "listen = \"not-an-address\"");
    let (_dir, path) = config_dir(&toml);

    let mut c = authgate();
    c.arg("check").arg("--config").arg(&path);
    let out = run(c).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "file value alone must be rejected"
    );
    assert!(
        text(&out.stderr).contains("server.listen"),
        "{:?}",
        text(&out.stderr)
    );

    let mut c = authgate();
    c.arg("check")
        .arg("--config")
        .arg(&path)
        .env("AUTHGATE__SERVER__LISTEN", "127.0.0.1:0");
    let out = run(c).await;
    assert!(
        out.status.success(),
        "override should be applied: stdout {:?} stderr {:?}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[tokio::test]
async fn env_override_errors_name_the_key() {
    let (_dir, path) = config_dir(&valid_toml());
    let mut c = authgate();
    c.arg("check")
        .arg("--config")
        .arg(&path)
        .env("AUTHGATE__SERVER__IDLE_TIMEOUT", "10 parsecs");
    let out = run(c).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err:?}");
    assert!(err.contains("server.idle_timeout"), "{err:?}");
}

// ----- serve -----

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn wait_healthy(admin: u16, child: &mut tokio::process::Child) {
    let client = plain_client();
    let url = format!("http://127.0.0.1:{admin}/healthz");
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("authgate serve exited early: {status}");
        }
        let req = hyper::Request::get(&url)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(1), client.request(req)).await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("authgate serve never became healthy on admin port {admin}");
}

fn send_sigterm(pid: u32) {
    let st = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_resolves_relative_paths_and_stops_on_sigterm() {
    let https = free_port();
    let admin = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:{https}\"\n\n\
         [tls]\ncert = \"certs/dev-cert.pem\"\nkey = \"certs/dev-key.pem\"\ndev_self_signed = true\n\n\
         [admin]\nlisten = \"127.0.0.1:{admin}\"\n\n\
         [log]\nformat = \"json\"\n\n\
         [[routes]]\nprefix = \"/public/echo\"\nupstream = \"builtin:echo\"\nauth = \"public\"\n"
    );
    let config = dir.path().join("conf/gateway.toml");
    std::fs::write(&config, toml).unwrap();
    // Started from another directory: relative paths must resolve against conf/.
    let cwd = tempfile::tempdir().unwrap();
    let mut c = authgate();
    c.arg("serve")
        .arg("--config")
        .arg(&config)
        .current_dir(cwd.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    wait_healthy(admin, &mut child).await;

    let cert_path: &Path = &dir.path().join("conf/certs/dev-cert.pem");
    assert!(
        cert_path.exists(),
        "dev cert should be under the config's directory"
    );
    assert!(
        !cwd.path().join("certs").exists(),
        "nothing written relative to the cwd"
    );
    let cert = rustls::pki_types::CertificateDer::from_pem_file(cert_path).unwrap();
    let client = https_client::<http_body_util::Full<bytes::Bytes>>(&cert, false);
    let r = get(
        &client,
        &format!("https://127.0.0.1:{https}/public/echo?x=1"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["query"], "x=1");

    send_sigterm(child.id().expect("child pid"));
    let status = within("authgate serve to exit after SIGTERM", child.wait())
        .await
        .unwrap();
    assert!(
        status.success(),
        "serve should exit 0 after SIGTERM, got {status}"
    );
}

#[tokio::test]
async fn legacy_users_table_errors_are_named() {
    let sql = |body: &str| format!("{}\n[users.sql]\n{body}\n", valid_toml());
    let mysql = "url = \"mysql://app:hunter2@127.0.0.1:3306/laravel\"";
    let query = "query = \"SELECT id, password FROM users WHERE ? IN (name, email)\"";
    let (_dir, path) = config_dir(&sql(&format!("{mysql}\n{query}")));
    let out = run({
        let mut c = authgate();
        c.arg("check").arg("--config").arg(&path);
        c
    })
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    expect_check_error(
        &sql(&format!("{mysql}\n{query}\nqurey = 1")),
        &["users.sql.qurey"],
    )
    .await;
    expect_check_error(&sql(mysql), &["users.sql.query", "required"]).await;
    let err = expect_check_error(
        &sql(&format!("url = \"oracle://app:hunter2@db/x\"\n{query}")),
        &["users.sql.url", "app:***@db"],
    )
    .await;
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
    expect_check_error(
        &sql(&format!("url = \"postgres://db/x\"\n{query}")),
        &["users.sql.query", "$1"],
    )
    .await;
    expect_check_error(
        &sql(&format!(
            "{mysql}\nquery = \"SELECT id, password FROM users\""
        )),
        &["users.sql.query", "login name"],
    )
    .await;
    expect_check_error(
        &sql(&format!(
            "{mysql}\n{query}\nupdate_query = \"UPDATE users SET password = ?\""
        )),
        &["users.sql.update_query", "user id"],
    )
    .await;
    expect_check_error(
        &sql(&format!("{mysql}\n{query}\ntimeout = \"soon\"")),
        &["users.sql.timeout"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_a_bare_config_name_reloads_on_edit() {
    let (plain, admin) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    write_test_cert(dir.path());
    let toml = |routes: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nplain_listen = \"127.0.0.1:{plain}\"\n\n\
             [tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\n\n{routes}"
        )
    };
    let route = |prefix: &str| {
        format!(
            "[[routes]]\nprefix = \"{prefix}\"\nupstream = \"builtin:echo\"\nauth = \"public\"\n"
        )
    };
    std::fs::write(dir.path().join("gateway.toml"), toml(&route("/a"))).unwrap();
    // The README's way: `serve` in the config's directory, the file named without a directory.
    let mut c = authgate();
    c.arg("serve")
        .arg("--config")
        .arg("gateway.toml")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    wait_healthy(admin, &mut child).await;
    let client = plain_client();
    let status = |path: &'static str| {
        let client = client.clone();
        async move {
            let url = format!("http://127.0.0.1:{plain}{path}");
            get(&client, &url).await.status.as_u16()
        }
    };
    assert_eq!(status("/a").await, 200);
    assert_eq!(status("/b").await, 404);
    std::fs::write(
        dir.path().join("gateway.toml"),
        toml(&format!("{}\n{}", route("/a"), route("/b"))),
    )
    .unwrap();
    let mut reloaded = false;
    for _ in 0..100 {
        if status("/b").await == 200 {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    send_sigterm(child.id().expect("child pid"));
    let output = within("authgate serve to exit", child.wait_with_output())
        .await
        .unwrap();
    let log = text(&output.stderr);
    assert!(reloaded, "an edit of gateway.toml was not applied: {log}");
    assert!(
        log.contains("watching the config file"),
        "the startup log names the watched file: {log}"
    );
    // Not a terminal: no colour codes in the file, and durations without float noise.
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a log file: {log:?}"
    );
    let durations: Vec<&str> = log
        .split_whitespace()
        .filter_map(|field| field.strip_prefix("total_ms="))
        .collect();
    assert!(!durations.is_empty(), "no access-log line: {log}");
    for value in durations {
        let decimals = value.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(decimals <= 3, "total_ms={value}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_prints_the_outcome_and_fails_on_a_refusal() {
    let (plain, admin) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    write_test_cert(dir.path());
    let toml = |cert: &str, extra: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nplain_listen = \"127.0.0.1:{plain}\"\n\
             pid_file = \"run/authgate.pid\"\n\n\
             [tls]\ncert = \"{cert}\"\nkey = \"key.pem\"\n\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\n\n\
             [[routes]]\nprefix = \"/a\"\nupstream = \"builtin:echo\"\nauth = \"public\"\n{extra}"
        )
    };
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, toml("cert.pem", "")).unwrap();
    let mut c = authgate();
    c.arg("serve")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    wait_healthy(admin, &mut child).await;
    let reload = || {
        let mut c = authgate();
        c.arg("reload").arg("--config").arg(&config);
        run(c)
    };
    let out = reload().await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("reloaded"),
        "{}",
        text(&out.stdout)
    );

    // Valid to the CLI, refused by the gateway: the certificate file is missing.
    std::fs::write(&config, toml("missing.pem", "")).unwrap();
    let out = reload().await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("refused"),
        "{}",
        text(&out.stderr)
    );

    // Invalid: refused with the key path, the gateway not even asked.
    std::fs::write(&config, toml("cert.pem", "bogus = 1\n")).unwrap();
    let out = reload().await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("refused") && err.contains("bogus"), "{err}");
    send_sigterm(child.id().expect("pid"));
    let _ = within("serve to exit", child.wait()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_port_is_reported_once() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let (dir, path) = config_dir(&format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n"
    ));
    let mut c = authgate();
    c.arg("serve")
        .arg("--config")
        .arg(&path)
        .current_dir(dir.path());
    let out = run(c).await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    let last = err.lines().last().unwrap_or_default().to_owned();
    assert!(last.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert_eq!(last.matches("Address already in use").count(), 1, "{last}");
}

#[tokio::test]
async fn identity_provider_settings_are_checked() {
    let base = "name = \"corp\"\nissuer = \"https://idp.example\"\nclient_id = \"gw\"\nallowed_domains = [\"example.com\"]\n";
    let config = |provider: &str| format!("{}\n[[login.providers]]\n{provider}", valid_toml());
    for (provider, key, why) in [
        (
            "name = \"corp\"\nissuer = \"https://idp.example\"\nclient_id = \"gw\"\nprovision = true\n",
            "login.providers[0].allowed_domains",
            "say who may sign in",
        ),
        (
            &base.replace("https://idp.example", "http://idp.example") as &str,
            "login.providers[0].issuer",
            "https only",
        ),
        (
            &format!("{base}allow_insecure_loopback = true\n")
                .replace("https://idp.example", "http://idp.example"),
            "login.providers[0].issuer",
            "127.0.0.1 only",
        ),
        (
            &base.replace(
                "https://idp.example",
                "https://login.microsoftonline.com/common/v2.0",
            ),
            "login.providers[0].issuer",
            "tenant issuer",
        ),
        (
            &format!("{base}algorithms = [\"HS256\"]\n"),
            "login.providers[0].algorithms",
            "HMAC",
        ),
        (
            &base.replace("\"corp\"", "\"Corp SSO\""),
            "login.providers[0].name",
            "a-z",
        ),
        (
            &format!("{base}client_secret_env = \"AUTHGATE_TEST_NO_SUCH_SECRET\"\n"),
            "login.providers[0].client_secret_env",
            "is not set",
        ),
        (
            &format!("{base}scopes = [\"profile\"]\n"),
            "login.providers[0].scopes",
            "openid",
        ),
        (
            &format!("{base}admin_claim = \"groups\"\n"),
            "login.providers[0].admin_values",
            "admin",
        ),
        (
            &format!("{base}group_map = {{ eng = 7 }}\n"),
            "login.providers[0].group_map",
            "group_claim",
        ),
        (
            &format!("{base}redirect_uri = \"https://x\"\n"),
            "redirect_uri",
            "unknown",
        ),
    ] {
        let err = expect_check_error(&config(provider), &[key]).await;
        assert!(err.contains(why), "{provider}: {err:?}");
    }
    let twice = format!("{}\n[[login.providers]]\n{base}", config(base));
    expect_check_error(&twice, &["login.providers[1].name"]).await;
    let no_password = format!("{}\n[login]\npassword_form = false\n", valid_toml());
    expect_check_error(&no_password, &["login.password_form"]).await;
    // A valid provider: check lists its two pages.
    let (dir, path) = config_dir(&config(&format!(
        "{base}client_secret_file = \"secret.txt\"\n"
    )));
    std::fs::write(dir.path().join("secret.txt"), "s3cret\n").unwrap();
    let mut c = authgate();
    c.arg("check").arg("--config").arg(&path);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("/open/providers/corp/start"), "{stdout}");
    assert!(stdout.contains("/open/providers/corp/callback"), "{stdout}");
    assert!(!stdout.contains("s3cret") && !text(&out.stderr).contains("s3cret"));
}
