//! `/metrics` on the admin listener after known traffic: the expected series with the right
//! values (each gateway has its own recorder, so other tests cannot disturb the numbers).
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::*;
use support::{GatewayConfig, eventually_some, get, plain_client};

/// The value of the series `name{labels}` (labels as rendered, sorted by the exporter).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
}

async fn scrape(s: &Setup) -> String {
    let r = get(&plain_client(), &s.gw.admin_url("/metrics")).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type").unwrap().starts_with("text/plain"),
        "{:?}",
        r.header("content-type")
    );
    r.text()
}

#[tokio::test]
async fn known_traffic_shows_up_with_the_right_values() {
    let s = setup_with(GatewayConfig::new().admin()).await;
    // Two password grants, one client_credentials grant, two failed logins.
    s.login("web", "alice").await;
    s.login("web", "bob").await;
    let r = s
        .post(
            "/oauth2/token",
            Auth::Basic("svc", SECRET),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status, 200);
    for _ in 0..2 {
        let r = s
            .post(
                "/oauth2/token",
                Auth::Basic("web", SECRET),
                &[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", "wrong"),
                ],
            )
            .await;
        assert_eq!(r.status, 400);
    }
    // Proxied traffic: two good requests, one without a token, one with garbage, one
    // impersonation by a non-admin.
    let token = s.login("web", "alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        assert_eq!(s.echo(&token).await.0, 200);
    }
    let client = s.gw.client(false);
    let no_token = support::get(&client, &s.gw.url("/echo")).await;
    assert_eq!(no_token.status, 401);
    assert_eq!(s.echo("not-a-token").await.0, 401);
    let request = hyper::Request::get(s.gw.url("/echo"))
        .header("authorization", format!("Bearer {token}"))
        .header("user_id", BOB.to_string())
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(support::send(&client, request).await.status, 403);
    // Wait for the keyring's first refresh (every 100 ms in this config) and for the last
    // proxied request to be counted.
    let text = eventually_some(
        "a keyset refresh and five /echo requests in /metrics",
        || async {
            let text = scrape(&s).await;
            let refreshed = value(
                &text,
                r#"authgate_keyset_refreshes_total{issuer="https://gw.test"}"#,
            )
            .is_some_and(|n| n >= 1.0);
            let counted = value(
                &text,
                r#"authgate_request_duration_seconds_count{route="/echo"}"#,
            )
            .is_some_and(|n| n >= 5.0);
            (refreshed && counted).then_some(text)
        },
    )
    .await;
    let v = |series: &str| value(&text, series).unwrap_or_else(|| panic!("{series} in\n{text}"));
    assert_eq!(
        v(r#"authgate_tokens_issued_total{dialect="oauth2",grant="password"}"#),
        3.0
    );
    assert_eq!(
        v(r#"authgate_tokens_issued_total{dialect="oauth2",grant="client_credentials"}"#),
        1.0
    );
    assert_eq!(v("authgate_failed_logins_total"), 2.0);
    assert!(v(r#"authgate_keyset_refreshes_total{issuer="https://gw.test"}"#) >= 1.0);
    assert_eq!(
        v(r#"authgate_keyset_refresh_failures_total{issuer="https://gw.test"}"#),
        0.0
    );
    assert!(v(r#"authgate_keyset_age_seconds{issuer="https://gw.test"}"#) < 5.0);
    // The first use of a token verifies it; the cache admits it on the second.
    assert_eq!(
        v("authgate_token_cache_hits_total") + v("authgate_token_cache_misses_total"),
        4.0,
        "two good uses, the garbage token and the impersonation attempt"
    );
    assert_eq!(v(r#"authgate_store_up{backend="sqlite"}"#), 1.0);
    // Present (the value depends on the test client's keep-alive pool).
    assert!(v("authgate_open_connections") >= 0.0);
    // Requests by route (token endpoints by path), method class and status.
    let requests = |route: &str, method: &str, status: u16| {
        v(&format!(
            r#"authgate_requests_total{{route="{route}",method="{method}",status="{status}"}}"#
        ))
    };
    assert_eq!(requests("/echo", "read", 200), 2.0);
    assert_eq!(requests("/echo", "read", 401), 2.0);
    assert_eq!(requests("/echo", "read", 403), 1.0);
    assert_eq!(requests("/oauth2/token", "write", 200), 4.0);
    assert_eq!(requests("/oauth2/token", "write", 400), 2.0);
    assert_eq!(
        v(r#"authgate_request_duration_seconds_count{route="/echo"}"#),
        5.0
    );
    for (reason, count) in [
        ("missing", 1.0),
        ("invalid", 1.0),
        ("impersonation_refused", 1.0),
    ] {
        assert_eq!(
            v(&format!(
                r#"authgate_auth_failures_total{{reason="{reason}"}}"#
            )),
            count,
            "{reason}"
        );
    }
    assert_eq!(
        v(r#"authgate_store_connections_max{backend="sqlite"}"#),
        8.0
    );
}
