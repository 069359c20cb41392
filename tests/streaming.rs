//! Bodies stream through the gateway: 200 MB each way with flat memory.
//!
//! Its own test binary (own process), so the peak-RSS measurement (`VmHWM`) sees only this
//! test's gateway, stub and client.
#![allow(clippy::unwrap_used)]

mod support;

use http_body_util::BodyExt;
use support::*;

const MB: u64 = 1024 * 1024;
const SIZE: u64 = 200 * MB;
const MAX_GROWTH: u64 = 100 * MB;

/// Peak resident set size of this process, in bytes.
fn vm_hwm() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmHWM value");
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_with_flat_memory() {
    let up_stub = Stub::start(Mode::CountBody).await;
    let down_stub = Stub::start(Mode::BigResponse(SIZE)).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .route(&format!(
                "prefix = \"/up\"\nupstream = \"{}\"\nauth = \"public\"\nmax_body_bytes = \"1GiB\"",
                up_stub.url()
            ))
            .route(&format!(
                "prefix = \"/down\"\nupstream = \"{}\"\nauth = \"public\"",
                down_stub.url()
            )),
    )
    .await;
    let client: HttpsClient<ZeroBody> = https_client(&gw.cert, false);

    // Warm up (TLS, pools, first allocations) before taking the baseline.
    let warm = hyper::Request::post(gw.url("/up/warm"))
        .body(ZeroBody::new(MB))
        .unwrap();
    let r = send(&client, warm).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), MB.to_string());

    let before = vm_hwm();

    // Upload: 200 MB, generated chunk by chunk, counted by the stub.
    let req = hyper::Request::post(gw.url("/up/big"))
        .body(ZeroBody::new(SIZE))
        .unwrap();
    let resp = tokio::time::timeout(std::time::Duration::from_secs(300), client.request(req))
        .await
        .expect("upload within 300 s")
        .expect("upload request");
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(String::from_utf8_lossy(&body), SIZE.to_string());
    let rec = &up_stub.records()[1];
    assert_eq!(rec.body_len, SIZE);
    assert!(!rec.body_error);

    // Download: 200 MB from the stub, counted frame by frame here.
    let req = hyper::Request::get(gw.url("/down/big"))
        .body(ZeroBody::new(0))
        .unwrap();
    let resp = tokio::time::timeout(std::time::Duration::from_secs(60), client.request(req))
        .await
        .expect("download headers within 60 s")
        .expect("download request");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut received: u64 = 0;
    let download = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.expect("download body frame");
            if let Some(d) = frame.data_ref() {
                received += d.len() as u64;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(300), download)
        .await
        .expect("download within 300 s");
    assert_eq!(received, SIZE);

    let after = vm_hwm();
    let growth = after.saturating_sub(before);
    eprintln!(
        "VmHWM before {} MiB, after {} MiB, growth {} MiB",
        before / MB,
        after / MB,
        growth / MB
    );
    assert!(
        growth < MAX_GROWTH,
        "peak memory grew by {} MiB while streaming 2 x {} MiB (limit {} MiB)",
        growth / MB,
        SIZE / MB,
        MAX_GROWTH / MB
    );
}
