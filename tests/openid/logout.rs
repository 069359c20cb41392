//! RP-initiated logout at the end-session endpoint (`/open/logout`).

use crate::browser::*;
use crate::harness::*;
use crate::rp::*;
use crate::support::{GatewayConfig, Resp};

const END: &str = "/open/logout";

fn end_url(params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    format!("{END}?{}", query.finish())
}

/// Whether `browser` is still signed in: `prompt=none` answers with a code.
async fn signed_in(s: &Setup, browser: &mut Browser) -> bool {
    let r = browser
        .get(s, &authorize_url(RP, "&scope=openid&prompt=none"))
        .await;
    redirect_params(&r, false).contains_key("code")
}

fn location(r: &Resp) -> &str {
    assert_eq!(r.status, 303, "{}", r.text());
    r.header("location").unwrap()
}

#[tokio::test]
async fn a_valid_hint_ends_the_session_at_once_and_returns_with_state() {
    let s = openid_setup().await;
    let (mut browser, back) = sign_in(&s, RP, "&scope=openid").await;
    let tokens = redeem(&s, RP, &back["code"]).await.json();
    let hint = tokens["id_token"].as_str().unwrap();
    assert!(signed_in(&s, &mut browser).await);
    let r = browser
        .get(
            &s,
            &end_url(&[
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", BYE),
                ("state", "after logout"),
            ]),
        )
        .await;
    assert_eq!(location(&r), format!("{BYE}?state=after+logout"));
    assert!(!signed_in(&s, &mut browser).await, "the session ended");
}

#[tokio::test]
async fn an_expired_hint_is_still_a_hint() {
    let s = openid_setup_with(
        GatewayConfig::new().section("[dialects.oauth2.openid]\nid_token_ttl = \"1s\""),
    )
    .await;
    let (mut browser, back) = sign_in(&s, RP, "&scope=openid").await;
    let tokens = redeem(&s, RP, &back["code"]).await.json();
    let hint = tokens["id_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = browser
        .get(
            &s,
            &end_url(&[("id_token_hint", &hint), ("post_logout_redirect_uri", BYE)]),
        )
        .await;
    assert_eq!(location(&r), BYE);
    assert!(!signed_in(&s, &mut browser).await);
}

#[tokio::test]
async fn without_a_valid_hint_the_person_confirms() {
    let s = openid_setup().await;
    let (mut browser, _) = sign_in(&s, RP, "&scope=openid").await;
    for hint in [None, Some("eyJhbGciOiJub25lIn0.e30.")] {
        let mut params = vec![
            ("client_id", RP),
            ("post_logout_redirect_uri", BYE),
            ("state", "s1"),
        ];
        if let Some(hint) = hint {
            params.push(("id_token_hint", hint));
        }
        let r = browser.get(&s, &end_url(&params)).await;
        assert_eq!(r.status, 200, "a confirmation page");
        assert!(signed_in(&s, &mut browser).await, "nothing ended yet");
    }
    // The confirmation form posts back with the CSRF token and the parameters.
    let r = browser
        .get(
            &s,
            &end_url(&[
                ("client_id", RP),
                ("post_logout_redirect_uri", BYE),
                ("state", "s1"),
            ]),
        )
        .await;
    let mut fields = hidden_fields(&r.text());
    assert!(
        fields
            .iter()
            .any(|(k, v)| k == "post_logout_redirect_uri" && v == BYE)
    );
    // Without the CSRF token it is a new request (the confirmation again); with a wrong
    // one, refused.
    fields.retain(|(k, _)| k != "csrf_token");
    let params: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = browser.post(&s, END, &params).await;
    assert_eq!(r.status, 200, "the confirmation again");
    assert!(signed_in(&s, &mut browser).await);
    let mut forged = params.clone();
    forged.push(("csrf_token", "forged-forged-forged-forged-forged-forged-fo"));
    let r = browser.post(&s, END, &forged).await;
    assert_eq!(r.status, 403);
    assert!(signed_in(&s, &mut browser).await);
    let mut with_csrf = params.clone();
    let csrf = browser.csrf();
    with_csrf.push(("csrf_token", &csrf));
    let r = browser.post(&s, END, &with_csrf).await;
    assert_eq!(location(&r), format!("{BYE}?state=s1"));
    assert!(!signed_in(&s, &mut browser).await);
}

#[tokio::test]
async fn unregistered_or_unprovable_post_logout_uris_are_refused_with_a_page() {
    let s = openid_setup().await;
    let (mut browser, back) = sign_in(&s, RP, "&scope=openid").await;
    let tokens = redeem(&s, RP, &back["code"]).await.json();
    let hint = tokens["id_token"].as_str().unwrap();
    let cases: [&[(&str, &str)]; 4] = [
        // Not registered (the redirect URI is not a post-logout URI).
        &[
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", REDIRECT),
        ],
        // Registered for rp, but the hint was issued to rp and client_id says another.
        &[
            ("id_token_hint", hint),
            ("client_id", RP_ES),
            ("post_logout_redirect_uri", BYE),
        ],
        // No hint and no client_id: nobody to check the URI against.
        &[("post_logout_redirect_uri", BYE)],
        // An unknown client.
        &[("client_id", "nobody"), ("post_logout_redirect_uri", BYE)],
    ];
    for params in cases {
        let r = browser.get(&s, &end_url(params)).await;
        assert_eq!(r.status, 400, "{params:?}: {}", r.text());
        assert!(r.header("location").is_none());
        assert!(
            signed_in(&s, &mut browser).await,
            "{params:?} ended nothing"
        );
    }
}

#[tokio::test]
async fn a_relying_party_may_post_and_the_confirmation_keeps_the_hinted_client() {
    let s = openid_setup().await;
    let (mut browser, back) = sign_in(&s, RP, "&scope=openid").await;
    let tokens = redeem(&s, RP, &back["code"]).await.json();
    let hint = tokens["id_token"].as_str().unwrap().to_owned();
    // RP-Initiated Logout §2: POST like GET (no CSRF field: a new request, not our form).
    let r = browser
        .post(
            &s,
            END,
            &[
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", BYE),
                ("state", "p1"),
            ],
        )
        .await;
    assert_eq!(location(&r), format!("{BYE}?state=p1"));
    assert!(!signed_in(&s, &mut browser).await);

    // Bob is signed in here; alice's hint (no client_id) asks for a confirmation, which must
    // still know the client to send the browser back.
    let mut bobs = Browser::default();
    bobs.login(&s, &authorize_url(RP, "&scope=openid"), "bob", PASSWORD)
        .await;
    let r = bobs
        .get(
            &s,
            &end_url(&[("id_token_hint", &hint), ("post_logout_redirect_uri", BYE)]),
        )
        .await;
    assert_eq!(r.status, 200, "a confirmation");
    let mut fields = hidden_fields(&r.text());
    assert!(
        fields.iter().any(|(k, v)| k == "client_id" && v == RP),
        "{fields:?}"
    );
    fields.retain(|(k, _)| k != "csrf_token");
    let csrf = bobs.csrf();
    fields.push(("csrf_token".into(), csrf));
    let params: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = bobs.post(&s, END, &params).await;
    assert_eq!(location(&r), BYE);
    assert!(!signed_in(&s, &mut bobs).await);
}
