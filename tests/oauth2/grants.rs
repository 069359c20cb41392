//! Every grant at its seed endpoint and at `/oauth2/token`, answered as RFC 6749 §5.1 says.

use crate::harness::*;

#[tokio::test]
async fn password_grant_at_the_seed_endpoint_and_the_token_endpoint() {
    let s = setup().await;
    // Seed 003: client_secret_post, grant_type given.
    let r = s
        .post(
            "/oauth2/password",
            Auth::Post("web", SECRET),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("scope", "read"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json"))
    );
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "read");
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| t.len() >= 43)
    );
    let token = body["access_token"].as_str().unwrap();
    let payload = claims(token);
    assert_eq!(payload["sub"], ALICE.to_string());
    assert_eq!(payload["iss"], ISSUER);
    assert_eq!(payload["client_id"], "web");
    assert_eq!(s.echo(token).await, (200, Some(ALICE.to_string())));

    // Any login name works: e-mail and phone; grant_type may be omitted at the seed path.
    for login in ["alice@example.com", "+86 138 0000 0000"] {
        let r = s
            .post(
                "/oauth2/password",
                Auth::Basic("web", SECRET),
                &[("username", login), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(r.status, 200, "{login}: {}", r.text());
        assert_eq!(
            r.json()["scope"],
            "read write",
            "no scope asked: all registered"
        );
    }
    let body = s.login("web", "bob").await;
    assert_eq!(claims(body["access_token"].as_str().unwrap())["gid"], 8);
}

#[tokio::test]
async fn client_credentials_has_no_refresh_token_and_a_client_subject() {
    let s = setup().await;
    for path in ["/oauth2/client-credentials", "/oauth2/token"] {
        let r = s
            .post(
                path,
                Auth::Basic("svc", SECRET),
                &[("grant_type", "client_credentials"), ("scope", "read")],
            )
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let body = r.json();
        assert!(body.get("refresh_token").is_none(), "{body}");
        assert_eq!(body["scope"], "read");
        let token = body["access_token"].as_str().unwrap();
        let claims = claims(token);
        assert_eq!(claims["sub"], "client:svc");
        assert!(claims.get("gid").is_none(), "{claims}");
        // Never taken for a user: refused where a route does not accept clients…
        assert_eq!(s.echo(token).await.0, 403);
        // …and where one does, named in X-Client-Id with no user or group header, whatever
        // the client sent.
        let client = s.gw.client(false);
        let service = |extra: Option<(&'static str, &'static str)>| {
            let mut request = hyper::Request::get(s.gw.url("/service"))
                .header("authorization", format!("Bearer {token}"))
                .header("x-client-id", "web");
            if let Some((name, value)) = extra {
                request = request.header(name, value);
            }
            let request = request
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            crate::support::send(&client, request)
        };
        // A client cannot act for a user.
        assert_eq!(service(Some(("user_id", "1"))).await.status, 403);
        let r = service(None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let headers = &r.json()["headers"];
        assert_eq!(headers["x-client-id"], "svc", "{headers}");
        assert!(headers.get("user_id").is_none(), "{headers}");
        assert!(headers.get("group_id").is_none(), "{headers}");
    }
    // A client not registered for it.
    let r = s
        .post(
            "/oauth2/client-credentials",
            Auth::Basic("web", SECRET),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_oauth_error(&r, 400, "unauthorized_client");
}

#[tokio::test]
async fn refresh_rotates_narrows_and_never_widens() {
    let s = setup().await;
    let first = s
        .post(
            "/oauth2/token",
            Auth::Basic("web", SECRET),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("scope", "read"),
            ],
        )
        .await
        .json();
    let old = first["refresh_token"].as_str().unwrap();
    // Widening is refused, and the refused request does not cost the token.
    let r = s
        .post(
            "/oauth2/refresh-token",
            Auth::Post("web", SECRET),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", old),
                ("scope", "read write"),
            ],
        )
        .await;
    assert_oauth_error(&r, 400, "invalid_scope");
    let r = s
        .post(
            "/oauth2/refresh-token",
            Auth::Post("web", SECRET),
            &[("grant_type", "refresh_token"), ("refresh_token", old)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let second = r.json();
    let new = second["refresh_token"].as_str().unwrap();
    assert_ne!(new, old, "refresh tokens rotate");
    assert_eq!(second["scope"], "read");
    // Another client cannot use it.
    let r = s.refresh("other", new).await;
    assert_oauth_error(&r, 400, "invalid_grant");
    let r = s.refresh("web", new).await;
    assert_eq!(r.status, 200, "the owner still can: {}", r.text());
}

#[tokio::test]
async fn refresh_reuse_revokes_the_family_and_its_access_tokens() {
    let s = setup().await;
    let first = s.login("web", "alice").await;
    let old = first["refresh_token"].as_str().unwrap().to_owned();
    let rotated = s.refresh("web", &old).await.json();
    let new = rotated["refresh_token"].as_str().unwrap();
    let access = rotated["access_token"].as_str().unwrap();
    assert_eq!(s.echo(access).await.0, 200);
    // The old one again: a replay.
    assert_oauth_error(&s.refresh("web", &old).await, 400, "invalid_grant");
    // The whole family is gone, the newest refresh token and the access tokens included.
    assert_oauth_error(&s.refresh("web", new).await, 400, "invalid_grant");
    assert_eq!(
        s.echo(access).await.0,
        401,
        "refused at once on this instance"
    );
    let first_access = first["access_token"].as_str().unwrap();
    assert_eq!(s.echo(first_access).await.0, 401);
}

#[tokio::test]
async fn two_concurrent_refreshes_exactly_one_wins() {
    let s = setup().await;
    let token = s.login("web", "alice").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (a, b) = tokio::join!(s.refresh("web", &token), s.refresh("web", &token));
    let wins = [&a, &b].iter().filter(|r| r.status == 200).count();
    assert_eq!(wins, 1, "{} / {}", a.text(), b.text());
    let loser = if a.status == 200 { &b } else { &a };
    assert_oauth_error(loser, 400, "invalid_grant");
}

#[tokio::test]
async fn code_exchange_with_and_without_pkce() {
    let s = setup().await;
    // A confidential client without PKCE, at the seed endpoint.
    let code = s.code("web", None).await;
    let r = s
        .post(
            "/oauth2/authorize",
            Auth::Post("web", SECRET),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert!(body["refresh_token"].is_string());
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["sub"],
        ALICE.to_string()
    );

    // A public client with PKCE S256.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let code = s.code("spa", Some(&challenge(verifier))).await;
    let exchange = |code: String, verifier: Option<&'static str>| {
        let s = &s;
        async move {
            let mut params = vec![
                ("grant_type", "authorization_code"),
                ("redirect_uri", REDIRECT),
            ];
            if let Some(v) = verifier {
                params.push(("code_verifier", v));
            }
            params.push(("code", code.as_str()));
            s.post("/oauth2/token", Auth::PublicId("spa"), &params)
                .await
        }
    };
    let r = exchange(code, Some(verifier)).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Wrong and missing verifiers burn the code.
    let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let code = s.code("spa", Some(&challenge(verifier))).await;
    assert_oauth_error(
        &exchange(code.clone(), Some(wrong)).await,
        400,
        "invalid_grant",
    );
    assert_oauth_error(&exchange(code, Some(verifier)).await, 400, "invalid_grant");
    let code = s.code("spa", Some(&challenge(verifier))).await;
    assert_oauth_error(&exchange(code, None).await, 400, "invalid_grant");
}

#[tokio::test]
async fn code_replay_revokes_what_the_first_use_issued() {
    let s = setup().await;
    let code = s.code("web", None).await;
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let first = s
        .post("/oauth2/authorize", Auth::Basic("web", SECRET), &params)
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let first = first.json();
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(s.echo(access).await.0, 200);
    let again = s
        .post("/oauth2/authorize", Auth::Basic("web", SECRET), &params)
        .await;
    assert_oauth_error(&again, 400, "invalid_grant");
    assert_eq!(
        s.echo(access).await.0,
        401,
        "the first use's access token is revoked"
    );
    let refresh = first["refresh_token"].as_str().unwrap();
    assert_oauth_error(&s.refresh("web", refresh).await, 400, "invalid_grant");
}

#[tokio::test]
async fn token_exchange_for_admins_only_and_never_for_another_admin() {
    let s = setup().await;
    let admin = s.login("web", "boss").await;
    let admin_token = admin["access_token"].as_str().unwrap();
    let exchange = |subject: &str, user: i64| {
        let user = user.to_string();
        let subject = subject.to_owned();
        let s = &s;
        async move {
            s.post(
                "/oauth2/token",
                Auth::Basic("web", SECRET),
                &[
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:token-exchange",
                    ),
                    ("subject_token", &subject),
                    (
                        "subject_token_type",
                        "urn:ietf:params:oauth:token-type:access_token",
                    ),
                    ("requested_subject", &user),
                ],
            )
            .await
        }
    };
    let r = exchange(admin_token, ALICE).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert!(body.get("refresh_token").is_none());
    assert!(body["expires_in"].as_u64().unwrap() <= 300);
    let token = body["access_token"].as_str().unwrap();
    let claims = claims(token);
    assert_eq!(claims["sub"], ALICE.to_string());
    assert_eq!(claims["act"]["sub"], BOSS.to_string());
    let (status, headers) = s.echo_headers(token).await;
    assert_eq!(status, 200);
    let headers = headers.unwrap();
    assert_eq!(headers["user_id"], ALICE.to_string());
    assert_eq!(headers["group_id"], "7", "the user's own group");
    assert_eq!(headers["x-impersonator-id"], BOSS.to_string(), "{headers}");

    // The admin's own id: still an exchange answer (RFC 8693 §2.2.1).
    let r = exchange(admin_token, BOSS).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );

    assert_oauth_error(&exchange(admin_token, ROOT2).await, 400, "invalid_grant");
    let alice = s.login("web", "alice").await;
    let alice_token = alice["access_token"].as_str().unwrap();
    assert_oauth_error(&exchange(alice_token, BOB).await, 400, "invalid_grant");
    // An actor token is not how this works.
    let r = s
        .post(
            "/oauth2/token",
            Auth::Basic("web", SECRET),
            &[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", admin_token),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("actor_token", admin_token),
                ("requested_subject", "100"),
            ],
        )
        .await;
    assert_oauth_error(&r, 400, "invalid_request");
}
