//! Identity integrity seen from clients (issue 17): a change of group or roles reaches tokens
//! already issued within the propagation bound, without signing anybody out; impersonation ids
//! are canonical (and audited as such); a disabled account answers exactly like a wrong
//! password.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::{Duration, Instant};

use authgate::store::{AuditFilter, UserPatch};
use bytes::Bytes;
use harness::*;
use http_body_util::Full;
use hyper::Request;
use support::*;

/// The bound design.md promises (the harness reloads every 100 ms; 2 s is the contract).
const PROPAGATION: Duration = Duration::from_secs(2);

/// GET /echo with the token and `extra` headers: status and the headers the upstream got.
async fn echo(s: &Setup, token: &str, extra: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut request =
        Request::get(s.gw.url("/echo")).header("authorization", format!("Bearer {token}"));
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let r = send(
        &s.gw.client(false),
        request.body(Full::new(Bytes::new())).unwrap(),
    )
    .await;
    let headers = if r.status == 200 {
        r.json()["headers"].clone()
    } else {
        r.json()
    };
    (r.status.as_u16(), headers)
}

/// Polls `check` until it holds or `PROPAGATION` has passed; returns how long it took.
async fn within_bound<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < PROPAGATION,
            "{what}: not within {PROPAGATION:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_admin_s_old_token_stops_impersonating() {
    let s = setup().await;
    let token = s.login("web", "boss").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice = ALICE.to_string();
    let (status, seen) = echo(&s, &token, &[("user_id", &alice)]).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["user_id"], alice.as_str());
    assert_eq!(seen["x-impersonator-id"], BOSS.to_string().as_str());

    let patch = UserPatch {
        roles: Some(vec![]),
        ..UserPatch::default()
    };
    s.store
        .update_user(BOSS, patch, authgate::store::now())
        .await
        .unwrap();
    within_bound("impersonation refused after the demotion", || async {
        echo(&s, &token, &[("user_id", &alice)]).await.0 == 403
    })
    .await;
    // Not signed out: the same token still works for themselves.
    let (status, seen) = echo(&s, &token, &[]).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["user_id"], BOSS.to_string().as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_change_reaches_the_old_token() {
    let s = setup().await;
    let login = s.login("web", "alice").await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    let (status, seen) = echo(&s, &token, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(seen["group_id"], "7");
    let patch = UserPatch {
        group_id: Some(9),
        ..UserPatch::default()
    };
    s.store
        .update_user(ALICE, patch, authgate::store::now())
        .await
        .unwrap();
    within_bound("the new group injected for the old token", || async {
        let (status, seen) = echo(&s, &token, &[]).await;
        status == 200 && seen["group_id"] == "9"
    })
    .await;
    // The refresh token still works too (nobody was signed out), and the new token says 9.
    let refresh = login["refresh_token"].as_str().unwrap();
    let r = s.refresh("web", refresh).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(claims(r.json()["access_token"].as_str().unwrap())["gid"], 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_reaches_the_old_token_too() {
    let s = setup().await;
    let token = s.login("web", "bob").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice = ALICE.to_string();
    assert_eq!(echo(&s, &token, &[("user_id", &alice)]).await.0, 403);
    let patch = UserPatch {
        roles: Some(vec!["admin".into()]),
        ..UserPatch::default()
    };
    s.store
        .update_user(BOB, patch, authgate::store::now())
        .await
        .unwrap();
    within_bound("impersonation allowed after the promotion", || async {
        echo(&s, &token, &[("user_id", &alice)]).await.0 == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_ids_must_be_canonical_and_are_audited_so() {
    let s = setup().await;
    let token = s.login("web", "boss").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for (name, value) in [
        ("user_id", format!("0{ALICE}")),
        ("user_id", format!("+{ALICE}")),
        ("user_id", "abc".to_owned()),
        ("user_id", "-1".to_owned()),
        ("group_id", "1e5".to_owned()),
        ("group_id", "abc".to_owned()),
        ("group_id", "-1".to_owned()),
    ] {
        let (status, body) = echo(&s, &token, &[(name, &value)]).await;
        assert_eq!(status, 400, "{name}: {value}: {body}");
        assert_eq!(body["error"], "invalid_request", "{name}: {value}");
    }
    let alice = ALICE.to_string();
    let (status, seen) = echo(&s, &token, &[("user_id", &alice)]).await;
    assert_eq!(status, 200, "{seen}");
    let filter = AuditFilter {
        subject: Some(format!("user:{ALICE}")),
        kind: Some("impersonate".into()),
        limit: 10,
        ..AuditFilter::default()
    };
    let records = s.store.audit_search(&filter).await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records[0].event.actor.as_deref(),
        Some(format!("user:{BOSS}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_account_answers_exactly_like_a_wrong_password() {
    let s = setup().await;
    s.store
        .set_disabled(BOB, true, authgate::store::now())
        .await
        .unwrap();
    for path in ["/oauth2/token", "/oauth2/password"] {
        let mut answers = Vec::new();
        for password in [PASSWORD, "not the password at all"] {
            let params = [
                ("grant_type", "password"),
                ("username", "bob"),
                ("password", password),
            ];
            answers.push(s.post(path, Auth::Basic("web", SECRET), &params).await);
        }
        let (right, wrong) = (&answers[0], &answers[1]);
        assert_eq!(right.status, wrong.status, "{path}");
        assert_eq!(right.text(), wrong.text(), "{path}: the bodies differ");
        assert_oauth_error(right, 400, "invalid_grant");
        assert!(!right.text().contains("disabled"), "{}", right.text());
    }
    // The reason is not lost: the audit log has it.
    let filter = AuditFilter {
        kind: Some("login.disabled".into()),
        limit: 10,
        ..AuditFilter::default()
    };
    within_bound("the disabled login audited", || async {
        !s.store.audit_search(&filter).await.unwrap().is_empty()
    })
    .await;
}
