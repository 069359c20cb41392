//! Config reload while serving: under steady load not one request fails; an invalid config is
//! refused and the old one keeps serving; a new certificate is presented to new handshakes;
//! editing the file and SIGHUP both trigger it.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use support::{
    GatewayConfig, STEP_TIMEOUT, TestGateway, eventually, get, plain_client, tls_connect,
    write_test_cert,
};

fn base() -> GatewayConfig {
    GatewayConfig::new()
        .admin()
        .public_route("/a", "builtin:echo")
}

/// Replaces the gateway's config file with `config`.
fn rewrite(gw: &TestGateway, config: GatewayConfig) {
    std::fs::write(&gw.config_path, config.render()).unwrap();
}

async fn status(gw: &TestGateway, path: &str) -> u16 {
    get(&gw.client(false), &gw.url(path)).await.status.as_u16()
}

async fn metric(gw: &TestGateway, series: &str) -> f64 {
    let text = get(&plain_client(), &gw.admin_url("/metrics")).await.text();
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().unwrap())
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_fail_not_one_request() {
    let gw = TestGateway::start(base()).await;
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let done = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for h2 in [false, true] {
        // Keep-alive connections opened before the reloads keep being used across them.
        let client = gw.client(h2);
        let url = gw.url("/a/x");
        let (ok, failed, done) = (Arc::clone(&ok), Arc::clone(&failed), Arc::clone(&done));
        clients.push(tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let request = Request::get(&url).body(Full::new(Bytes::new())).unwrap();
                match client.request(request).await {
                    Ok(response) if response.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    // Every reload lands in the middle of the load: before each, and after the last, the
    // clients have been answered another batch of requests.
    let answered = || ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed);
    let another_batch = || {
        let from = answered();
        eventually("another 25 requests answered", move || async move {
            answered() >= from + 25
        })
    };
    for i in 0..6 {
        another_batch().await;
        let config = if i % 2 == 0 {
            base().public_route("/b", "builtin:echo")
        } else {
            base()
        };
        rewrite(&gw, config);
        gw.reloader.reload().await.unwrap();
    }
    another_batch().await;
    done.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("{ok} requests during 6 reloads, {failed} failed");
    assert!(ok > 100, "the load ran: {ok}");
    assert_eq!(failed, 0);
    // The last config (without /b) is the one serving.
    assert_eq!(status(&gw, "/b/x").await, 404);
    rewrite(&gw, base().public_route("/b", "builtin:echo"));
    gw.reloader.reload().await.unwrap();
    assert_eq!(status(&gw, "/b/x").await, 200);
    assert!(metric(&gw, r#"authgate_config_reloads_total{result="ok"}"#).await >= 7.0);
}

#[tokio::test]
async fn an_invalid_config_is_refused_and_the_old_one_keeps_serving() {
    let gw = TestGateway::start(base()).await;
    let mut text = base().public_route("/b", "builtin:echo").render();
    text.push_str("\n[auth]\nleeway = \"a while\"\n");
    std::fs::write(&gw.config_path, text).unwrap();
    let error = gw.reloader.reload().await.unwrap_err().to_string();
    assert!(error.contains("auth.leeway"), "{error}");
    assert_eq!(status(&gw, "/a/x").await, 200);
    assert_eq!(
        status(&gw, "/b/x").await,
        404,
        "nothing of the refused config"
    );
    // A config that parses but cannot be served (its certificate is missing) is refused too.
    let mut text = base().public_route("/b", "builtin:echo").render();
    text = text.replace("cert = \"cert.pem\"", "cert = \"missing.pem\"");
    std::fs::write(&gw.config_path, text).unwrap();
    let error = gw.reloader.reload().await.unwrap_err().to_string();
    assert!(error.contains("missing.pem"), "{error}");
    assert_eq!(status(&gw, "/b/x").await, 404);
    // At least these two (the file watch may have refused the same edits once more).
    assert!(metric(&gw, r#"authgate_config_reloads_total{result="rejected"}"#).await >= 2.0);
}

#[tokio::test]
async fn a_new_certificate_is_presented_to_new_handshakes() {
    let gw = TestGateway::start(base()).await;
    let old_client = gw.client(false);
    assert_eq!(get(&old_client, &gw.url("/a/x")).await.status, 200);
    // A new certificate and key at the same paths, then a reload.
    write_test_cert(gw.dir.path());
    let new_cert = CertificateDer::from_pem_file(gw.dir.path().join("cert.pem"))
        .unwrap()
        .into_owned();
    assert_ne!(new_cert, gw.cert);
    gw.reloader.reload().await.unwrap();
    // A client that trusts only the new certificate completes a handshake: the server
    // presents it. (With the old one it would fail verification.)
    let _tls = tls_connect(gw.https_addr, &new_cert, &[b"http/1.1"]).await;
    // The connection opened before the swap keeps working.
    assert_eq!(get(&old_client, &gw.url("/a/x")).await.status, 200);
}

#[tokio::test]
async fn editing_the_file_or_sighup_reloads() {
    let gw = TestGateway::start(base()).await;
    rewrite(&gw, base().public_route("/b", "builtin:echo"));
    eventually("the edit to be picked up", || async {
        status(&gw, "/b/x").await == 200
    })
    .await;
    // SIGHUP to this process: every gateway in it reloads its own file (harmless for the
    // others). So that the count is clean, wait until the watcher is done with the edit: it
    // reloads once per burst of file events, its debounce (300 ms of real time in the
    // gateway) after the burst began. Nothing signals that no burst is pending, so wait for
    // the count to stand still for longer than the debounce.
    let before = settled(&gw, r#"authgate_config_reloads_total{result="ok"}"#).await;
    let pid = std::process::id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    eventually("SIGHUP to reload", || async {
        metric(&gw, r#"authgate_config_reloads_total{result="ok"}"#).await > before
    })
    .await;
}

/// The value of `series` once it has not changed for 500 ms (longer than the watcher's
/// 300 ms debounce).
async fn settled(gw: &TestGateway, series: &str) -> f64 {
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut value = metric(gw, series).await;
    let mut since = Instant::now();
    while since.elapsed() < Duration::from_millis(500) {
        assert!(Instant::now() < deadline, "{series} never settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = metric(gw, series).await;
        if now != value {
            (value, since) = (now, Instant::now());
        }
    }
    value
}
