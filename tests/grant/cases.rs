use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use authgate::grant::{
    AuthorizationRequest, ClientCredentials, Disposition, GrantError, GrantRequest, IssueOptions,
    Login, Subject, TokenRequest,
};
use authgate::store::{KeyAlg, now};

use super::harness::*;

fn code_of(result: &Result<authgate::grant::Grant, GrantError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[tokio::test]
async fn password_logs_in_by_any_name_by_account_and_by_user_id() {
    let h = Harness::new().await;
    for login in [
        Login::AnyName("alice".into()),
        Login::AnyName("+138-0000-0000".into()),
        Login::AnyName("ALICE@example.com".into()),
        Login::Account("Alice".into()),
        Login::UserId(ALICE),
    ] {
        let grant = h.login("web", login.clone(), PASSWORD).await.unwrap();
        assert_eq!(grant.user().map(|u| u.id), Some(ALICE), "{login:?}");
        assert_eq!(grant.token_type, "Bearer");
        assert_eq!(grant.expires_in, Duration::from_secs(3600));
        assert_eq!(grant.scope, vec!["read", "write"]);
        assert!(grant.refresh_token.is_some());
        let principal = h.verifier.verify(&grant.access_token).unwrap();
        assert_eq!(principal.user_id, "100");
        assert_eq!(principal.group_id.as_deref(), Some("7"));
        assert_eq!(principal.client_id.as_deref(), Some("web"));
    }
    // `Account` means the user name only, not the phone number.
    let by_phone = h
        .login("web", Login::Account("13800000000".into()), PASSWORD)
        .await;
    assert_eq!(code_of(&by_phone), "invalid_grant");
}

#[tokio::test]
async fn a_failed_login_looks_the_same_whether_the_user_exists_or_not() {
    let h = Harness::new().await;
    let wrong = h
        .login("web", Login::AnyName("alice".into()), "wrong password!")
        .await;
    let unknown = h
        .login("web", Login::AnyName("nobody".into()), PASSWORD)
        .await;
    let unknown_id = h.login("web", Login::UserId(999), PASSWORD).await;
    let wrong_id = h
        .login("web", Login::UserId(ALICE), "wrong password!")
        .await;
    let texts: Vec<String> = [wrong, unknown, unknown_id, wrong_id]
        .into_iter()
        .map(|r| {
            let e = r.unwrap_err();
            assert_eq!(Disposition::from(&e), Disposition::Credentials);
            format!("{} {e}", e.code())
        })
        .collect();
    assert!(texts.iter().all(|t| t == &texts[0]), "{texts:?}");
    assert_eq!(texts[0], "invalid_grant invalid login name or password");
}

#[tokio::test]
async fn client_authentication_errors() {
    let h = Harness::new().await;
    let grant = || GrantRequest::Password {
        login: Login::AnyName("alice".into()),
        password: PASSWORD.into(),
    };
    let both = h.token(ClientCredentials::Both, grant(), None).await;
    assert_eq!(code_of(&both), "invalid_request");
    let from_parts = ClientCredentials::from_parts(
        Some(("web".into(), WEB_SECRET.into())),
        Some("web".into()),
        None,
    );
    assert_eq!(from_parts, ClientCredentials::Both);
    let missing = h.token(ClientCredentials::Missing, grant(), None).await;
    assert_eq!(code_of(&missing), "invalid_client");
    let wrong = ClientCredentials::Basic {
        id: "web".into(),
        secret: "not the secret at all".into(),
    };
    assert_eq!(
        code_of(&h.token(wrong, grant(), None).await),
        "invalid_client"
    );
    let no_secret = ClientCredentials::Post {
        id: "web".into(),
        secret: None,
    };
    assert_eq!(
        code_of(&h.token(no_secret, grant(), None).await),
        "invalid_client"
    );
    let unknown = ClientCredentials::Post {
        id: "ghost".into(),
        secret: Some(WEB_SECRET.into()),
    };
    assert_eq!(
        code_of(&h.token(unknown, grant(), None).await),
        "invalid_client"
    );
    let post = ClientCredentials::Post {
        id: "web".into(),
        secret: Some(WEB_SECRET.into()),
    };
    assert_eq!(code_of(&h.token(post, grant(), None).await), "ok");
    // A public client identified by its app id; a confidential one cannot be.
    let app = ClientCredentials::AppId("spa-app".into());
    let spa = h.token(app, grant(), None).await;
    assert_eq!(code_of(&spa), "unauthorized_client");
    // Secrets never show in Debug.
    assert!(!format!("{:?}", basic("web")).contains(WEB_SECRET));
}

#[tokio::test]
async fn clients_only_use_the_grants_and_scopes_they_are_registered_for() {
    let h = Harness::new().await;
    let svc = h
        .login("svc", Login::AnyName("alice".into()), PASSWORD)
        .await;
    assert_eq!(code_of(&svc), "unauthorized_client");
    let cc = h
        .token(basic("web"), GrantRequest::ClientCredentials, None)
        .await;
    assert_eq!(code_of(&cc), "unauthorized_client");
    let public_password = h
        .token(
            ClientCredentials::Post {
                id: "spa".into(),
                secret: None,
            },
            GrantRequest::Password {
                login: Login::AnyName("alice".into()),
                password: PASSWORD.into(),
            },
            None,
        )
        .await;
    assert_eq!(code_of(&public_password), "unauthorized_client");
    let wide = GrantRequest::Password {
        login: Login::AnyName("alice".into()),
        password: PASSWORD.into(),
    };
    let wide = h.token(basic("web"), wide, Some(&["read", "admin"])).await;
    assert_eq!(code_of(&wide), "invalid_scope");
    // Registered for password but not refresh_token: no refresh token.
    let grant = h
        .login("norefresh", Login::AnyName("alice".into()), PASSWORD)
        .await
        .unwrap();
    assert!(grant.refresh_token.is_none());
}

#[tokio::test]
async fn refresh_rotates_narrows_and_never_widens() {
    let h = Harness::new().await;
    let first = GrantRequest::Password {
        login: Login::AnyName("alice".into()),
        password: PASSWORD.into(),
    };
    let first = h.token(basic("web"), first, Some(&["read"])).await.unwrap();
    let r1 = first.refresh_token.unwrap();
    // Widening is refused, and costs nothing: the token still works afterwards.
    let wide = h
        .token(basic("web"), refresh(&r1), Some(&["read", "write"]))
        .await;
    assert_eq!(code_of(&wide), "invalid_scope");
    let second = h.token(basic("web"), refresh(&r1), None).await.unwrap();
    assert_eq!(second.scope, vec!["read"]);
    let r2 = second.refresh_token.clone().unwrap();
    assert_ne!(r1, r2);
    // Narrowing to nothing is allowed; the family keeps `read` for later.
    let narrow = h
        .token(basic("web"), refresh(&r2), Some(&[]))
        .await
        .unwrap();
    assert!(narrow.scope.is_empty());
    let r3 = narrow.refresh_token.unwrap();
    let again = h
        .token(basic("web"), refresh(&r3), Some(&["read"]))
        .await
        .unwrap();
    assert_eq!(again.scope, vec!["read"]);
    // Another client cannot use it.
    let other = h
        .token(
            basic("norefresh"),
            refresh(again.refresh_token.as_deref().unwrap()),
            None,
        )
        .await;
    assert_eq!(code_of(&other), "unauthorized_client");
    let garbage = h.token(basic("web"), refresh("not-a-token"), None).await;
    assert_eq!(code_of(&garbage), "invalid_grant");
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_family() {
    let h = Harness::new().await;
    let first = h
        .login("web", Login::AnyName("alice".into()), PASSWORD)
        .await
        .unwrap();
    let r1 = first.refresh_token.unwrap();
    let second = h.token(basic("web"), refresh(&r1), None).await.unwrap();
    let r2 = second.refresh_token.unwrap();
    let replay = h.token(basic("web"), refresh(&r1), None).await;
    assert_eq!(code_of(&replay), "invalid_grant");
    // The thief's replay killed the legitimate holder's new token too.
    let after = h.token(basic("web"), refresh(&r2), None).await;
    assert_eq!(code_of(&after), "invalid_grant");
}

#[tokio::test]
async fn of_two_concurrent_refreshes_exactly_one_wins() {
    let h = Harness::new().await;
    let first = h
        .login("web", Login::AnyName("alice".into()), PASSWORD)
        .await
        .unwrap();
    let r1 = first.refresh_token.unwrap();
    let (a, b) = tokio::join!(
        h.token(basic("web"), refresh(&r1), None),
        h.token(basic("web"), refresh(&r1), None)
    );
    let wins = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{:?} {:?}", a.as_ref().err(), b.as_ref().err());
    let loser = if a.is_ok() { &b } else { &a };
    assert_eq!(code_of(loser), "invalid_grant");
}

fn pkce_pair() -> (String, String) {
    use base64::Engine as _;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    (verifier, challenge)
}

async fn code_for(h: &Harness, client: &str, challenge: Option<&str>) -> String {
    h.engine
        .issue_code(AuthorizationRequest {
            client_id: client.into(),
            user_id: ALICE,
            redirect_uri: Some(REDIRECT.into()),
            scope: Some(vec!["read".into()]),
            code_challenge: challenge.map(Into::into),
            code_challenge_method: challenge.map(|_| "S256".into()),
            nonce: None,
            auth_time: None,
            resources: Vec::new(),
        })
        .await
        .unwrap()
}

fn exchange(code: &str, verifier: Option<&str>) -> GrantRequest {
    GrantRequest::AuthorizationCode {
        code: code.into(),
        redirect_uri: Some(REDIRECT.into()),
        code_verifier: verifier.map(Into::into),
    }
}

fn spa() -> ClientCredentials {
    ClientCredentials::Post {
        id: "spa".into(),
        secret: None,
    }
}

#[tokio::test]
async fn authorization_code_with_pkce_for_a_public_client() {
    let h = Harness::new().await;
    let (verifier, challenge) = pkce_pair();
    // RFC 7636 appendix B's example pair.
    assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    let code = code_for(&h, "spa", Some(&challenge)).await;
    let grant = h
        .token(spa(), exchange(&code, Some(&verifier)), None)
        .await
        .unwrap();
    assert_eq!(grant.user().map(|u| u.id), Some(ALICE));
    assert_eq!(grant.scope, vec!["read"]);
    assert!(grant.refresh_token.is_some());
    h.verifier.verify(&grant.access_token).unwrap();
}

#[tokio::test]
async fn pkce_wrong_or_missing_verifier_and_plain_are_refused() {
    let h = Harness::new().await;
    let (verifier, challenge) = pkce_pair();
    let code = code_for(&h, "spa", Some(&challenge)).await;
    let wrong = "x".repeat(43);
    assert_eq!(
        code_of(&h.token(spa(), exchange(&code, Some(&wrong)), None).await),
        "invalid_grant"
    );
    // The failed attempt burnt the code.
    assert_eq!(
        code_of(&h.token(spa(), exchange(&code, Some(&verifier)), None).await),
        "invalid_grant"
    );
    let code = code_for(&h, "spa", Some(&challenge)).await;
    assert_eq!(
        code_of(&h.token(spa(), exchange(&code, None), None).await),
        "invalid_grant"
    );
    // A public client without PKCE cannot even get a code; `plain` neither.
    let mut request = AuthorizationRequest {
        client_id: "spa".into(),
        user_id: ALICE,
        redirect_uri: Some(REDIRECT.into()),
        scope: None,
        code_challenge: None,
        code_challenge_method: None,
        nonce: None,
        auth_time: None,
        resources: Vec::new(),
    };
    let none = h.engine.issue_code(request.clone()).await.map(|_| ());
    assert_eq!(none.unwrap_err().code(), "invalid_request");
    request.code_challenge = Some(verifier.clone());
    request.code_challenge_method = Some("plain".into());
    let plain = h.engine.issue_code(request.clone()).await.map(|_| ());
    assert_eq!(plain.unwrap_err().code(), "invalid_request");
    // A confidential client may skip PKCE; a verifier for a code without challenge is refused.
    let code = code_for(&h, "web", None).await;
    let sneaky = h
        .token(basic("web"), exchange(&code, Some(&verifier)), None)
        .await;
    assert_eq!(code_of(&sneaky), "invalid_grant");
    let code = code_for(&h, "web", None).await;
    assert_eq!(
        code_of(&h.token(basic("web"), exchange(&code, None), None).await),
        "ok"
    );
}

#[tokio::test]
async fn codes_are_bound_to_client_and_redirect_uri() {
    let h = Harness::new().await;
    let code = code_for(&h, "web", None).await;
    let other_uri = GrantRequest::AuthorizationCode {
        code: code.clone(),
        redirect_uri: Some(format!("{REDIRECT}/")),
        code_verifier: None,
    };
    assert_eq!(
        code_of(&h.token(basic("web"), other_uri, None).await),
        "invalid_grant"
    );
    let (verifier, challenge) = pkce_pair();
    let code = code_for(&h, "spa", Some(&challenge)).await;
    let stolen = h
        .token(basic("web"), exchange(&code, Some(&verifier)), None)
        .await;
    assert_eq!(code_of(&stolen), "invalid_grant");
    let bad_uri = AuthorizationRequest {
        client_id: "web".into(),
        user_id: ALICE,
        redirect_uri: Some("https://evil.example/cb".into()),
        scope: None,
        code_challenge: None,
        code_challenge_method: None,
        nonce: None,
        auth_time: None,
        resources: Vec::new(),
    };
    assert_eq!(
        h.engine.issue_code(bad_uri).await.unwrap_err().code(),
        "invalid_request"
    );
}

#[tokio::test]
async fn a_replayed_code_revokes_what_its_first_use_issued() {
    let h = Harness::new().await;
    let code = code_for(&h, "web", None).await;
    let first = h
        .token(basic("web"), exchange(&code, None), None)
        .await
        .unwrap();
    let replay = h.token(basic("web"), exchange(&code, None), None).await;
    assert_eq!(code_of(&replay), "invalid_grant");
    // The refresh family is revoked …
    let r = first.refresh_token.clone().unwrap();
    assert_eq!(
        code_of(&h.token(basic("web"), refresh(&r), None).await),
        "invalid_grant"
    );
    // … and the access token's jti is denied (the proxy sees it after the keyring refresh).
    let denied = h.store.revocations(now()).await.unwrap().denied_jtis;
    assert!(denied.iter().any(|(jti, _)| jti == &first.jti));
    h.keyring.refresh().await.unwrap();
    assert!(h.verifier.verify(&first.access_token).is_err());
}

#[tokio::test]
async fn client_credentials_speak_for_the_client_never_a_user() {
    let h = Harness::new().await;
    let grant = h
        .token(
            basic("svc"),
            GrantRequest::ClientCredentials,
            Some(&["read"]),
        )
        .await
        .unwrap();
    assert_eq!(grant.subject, Subject::Client);
    assert!(grant.refresh_token.is_none() && grant.group_id.is_none());
    let claims = claims(&grant.access_token);
    assert_eq!(claims["sub"], "client:svc");
    assert!(claims.get("gid").is_none());
    assert_eq!(claims["roles"], serde_json::json!([]));
    let principal = h.verifier.verify(&grant.access_token).unwrap();
    assert!(principal.user_id.parse::<i64>().is_err());
    assert!(principal.roles.is_empty());
    let wide = h
        .token(
            basic("svc"),
            GrantRequest::ClientCredentials,
            Some(&["root"]),
        )
        .await;
    assert_eq!(code_of(&wide), "invalid_scope");
}

fn act_as(subject_token: &str, user_id: i64, group_id: Option<i64>) -> GrantRequest {
    GrantRequest::TokenExchange {
        subject_token: subject_token.into(),
        user_id: Some(user_id),
        group_id,
    }
}

#[tokio::test]
async fn admins_exchange_their_token_for_a_short_lived_user_token() {
    let h = Harness::new().await;
    let admin = h.login("web", Login::UserId(BOSS), PASSWORD).await.unwrap();
    let grant = h
        .token(basic("web"), act_as(&admin.access_token, ALICE, None), None)
        .await
        .unwrap();
    assert_eq!(grant.user().map(|u| u.id), Some(ALICE));
    assert_eq!(grant.actor.as_ref().map(|a| a.id), Some(BOSS));
    assert!(grant.refresh_token.is_none());
    assert_eq!(grant.expires_in, Duration::from_secs(300));
    let claims = claims(&grant.access_token);
    assert_eq!(claims["sub"], "100");
    assert_eq!(claims["act"]["sub"], "1");
    h.verifier.verify(&grant.access_token).unwrap();
    let audit = h.store.audit_log(None, 10).await.unwrap();
    assert!(audit.iter().any(|r| r.event.action == "token.exchange"));
    // Acting as admin of another group: the admin's own token with that gid, no `act`.
    let group = h
        .token(
            basic("web"),
            act_as(&admin.access_token, BOSS, Some(42)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(group.group_id, Some(42));
    assert!(claims_of(&group).get("act").is_none());
}

fn claims_of(grant: &authgate::grant::Grant) -> serde_json::Value {
    claims(&grant.access_token)
}

#[tokio::test]
async fn token_exchange_refusals() {
    let h = Harness::new().await;
    let admin = h.login("web", Login::UserId(BOSS), PASSWORD).await.unwrap();
    let other_admin = h
        .token(
            basic("web"),
            act_as(&admin.access_token, OTHER_ADMIN, None),
            None,
        )
        .await;
    assert_eq!(code_of(&other_admin), "invalid_grant");
    let user = h
        .login("web", Login::UserId(ALICE), PASSWORD)
        .await
        .unwrap();
    let not_admin = h
        .token(basic("web"), act_as(&user.access_token, BOSS, None), None)
        .await;
    assert_eq!(code_of(&not_admin), "invalid_grant");
    let forged = h
        .token(basic("web"), act_as("e30.e30.sig", ALICE, None), None)
        .await;
    assert_eq!(code_of(&forged), "invalid_grant");
    let missing = h
        .token(basic("web"), act_as(&admin.access_token, 4242, None), None)
        .await;
    assert_eq!(code_of(&missing), "invalid_grant");
    let group_for_other = h
        .token(
            basic("web"),
            act_as(&admin.access_token, ALICE, Some(3)),
            None,
        )
        .await;
    assert_eq!(code_of(&group_for_other), "invalid_request");
    let unregistered = h
        .token(
            basic("norefresh"),
            act_as(&admin.access_token, ALICE, None),
            None,
        )
        .await;
    assert_eq!(code_of(&unregistered), "unauthorized_client");
}

#[tokio::test]
async fn failed_logins_back_off_per_account_and_source_then_429() {
    let h = Harness::new().await;
    for _ in 0..5 {
        let r = h
            .login("web", Login::AnyName("alice".into()), "wrong password!")
            .await;
        assert_eq!(code_of(&r), "invalid_grant");
    }
    // Blocked for this pair, even with the right password.
    let blocked = h
        .login("web", Login::AnyName("alice".into()), PASSWORD)
        .await;
    match blocked {
        Err(GrantError::TooManyAttempts { retry_after }) => {
            assert!(retry_after >= Duration::from_secs(1));
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    // Alice herself, from elsewhere, is not locked out.
    let elsewhere = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    let grant = GrantRequest::Password {
        login: Login::AnyName("alice".into()),
        password: PASSWORD.into(),
    };
    assert_eq!(
        code_of(&h.token_from(elsewhere, basic("web"), grant, None).await),
        "ok"
    );
}

#[tokio::test]
async fn client_secret_guessing_is_throttled_too() {
    let h = Harness::new().await;
    let wrong = || ClientCredentials::Basic {
        id: "svc".into(),
        secret: "guess guess guess guess".into(),
    };
    for _ in 0..5 {
        let r = h
            .token(wrong(), GrantRequest::ClientCredentials, None)
            .await;
        assert_eq!(code_of(&r), "invalid_client");
    }
    let blocked = h
        .token(basic("svc"), GrantRequest::ClientCredentials, None)
        .await;
    assert_eq!(code_of(&blocked), "too_many_attempts");
}

#[tokio::test]
async fn the_dialect_chooses_algorithm_and_default_lifetime() {
    let h = Harness::new().await;
    let key = h
        .store
        .add_key(KeyAlg::Rs256, Some(2048), None, now())
        .await
        .unwrap();
    h.store.activate_key(&key.kid, now()).await.unwrap();
    h.keyring.refresh().await.unwrap();
    let request = TokenRequest {
        client: basic("web"),
        grant: GrantRequest::Password {
            login: Login::AnyName("alice".into()),
            password: PASSWORD.into(),
        },
        scope: None,
        source: SOURCE,
        resources: Vec::new(),
        options: IssueOptions {
            alg: KeyAlg::Rs256,
            access_ttl: Some(Duration::from_secs(31_536_000)),
            ..IssueOptions::default()
        },
    };
    let grant = h.engine.token(request).await.unwrap();
    assert_eq!(grant.kid, key.kid);
    assert_eq!(grant.expires_in, Duration::from_secs(31_536_000));
    let header = jsonwebtoken::decode_header(&grant.access_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    h.verifier.verify(&grant.access_token).unwrap();
}

#[tokio::test]
async fn a_missing_signing_key_is_an_internal_error() {
    let h = Harness::new().await;
    let request = TokenRequest {
        client: basic("svc"),
        grant: GrantRequest::ClientCredentials,
        scope: None,
        source: SOURCE,
        resources: Vec::new(),
        options: IssueOptions {
            alg: KeyAlg::EdDsa,
            ..IssueOptions::default()
        },
    };
    let error = h.engine.token(request).await.unwrap_err();
    assert_eq!(Disposition::from(&error), Disposition::Internal);
    assert_eq!(error.code(), "server_error");
    assert!(std::error::Error::source(&error).is_some());
}

/// Architecture invariant: the engine knows no HTTP and no wire format.
#[test]
fn the_engine_imports_neither_hyper_nor_serde() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![dir.join("grant.rs")];
    let mut pending = vec![dir.join("grant")];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        // Code only: the docs may say what the engine does not do.
        let text: String = source
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect();
        for forbidden in [
            "hyper",
            "use serde",
            "serde::",
            "Serialize",
            "Deserialize",
            "http::",
        ] {
            assert!(
                !text.contains(forbidden),
                "{} mentions `{forbidden}`",
                file.display()
            );
        }
    }
}
