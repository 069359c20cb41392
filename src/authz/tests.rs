use hyper::header::HeaderValue;

use super::*;

fn principal(user: &str, group: Option<&str>, roles: &[&str], scopes: &[&str]) -> Principal {
    Principal {
        issuer: "iss".into(),
        subject: user.into(),
        user_id: user.into(),
        group_id: group.map(Into::into),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        client_id: None,
        audiences: vec!["api".into()],
        jti: None,
        key_id: "k".into(),
        issued_at: None,
        expires_at: u64::MAX,
        actor: None,
    }
}

fn route(auth: AuthPolicy) -> RouteConfig {
    RouteConfig::echo("r", "/", auth)
}

fn asks(user: Option<&str>, group: Option<&str>) -> Requested {
    Requested {
        user_id: user.map(Into::into),
        group_id: group.map(Into::into),
    }
}

#[test]
fn plain_users_get_their_own_identity() {
    let alice = principal("1", Some("10"), &[], &[]);
    let r = route(AuthPolicy::Authenticated);
    let own = Identity {
        user_id: "1".into(),
        group_id: Some("10".into()),
        impersonator: None,
        scopes: vec![],
        client: false,
    };
    assert_eq!(decide(&alice, &r, &asks(None, None)), Ok(own.clone()));
    assert_eq!(
        decide(&alice, &r, &asks(Some("1"), Some("10"))),
        Ok(own),
        "naming yourself is fine"
    );
    assert!(matches!(
        decide(&alice, &r, &asks(Some("2"), None)),
        Err(Denied::Impersonation(_))
    ));
    assert!(matches!(
        decide(&alice, &r, &asks(None, Some("11"))),
        Err(Denied::Impersonation(_))
    ));
}

#[test]
fn admins_impersonate_users_and_groups() {
    let admin = principal("9", Some("1"), &["admin"], &[]);
    let r = route(AuthPolicy::Authenticated);
    assert_eq!(
        decide(&admin, &r, &asks(Some("2"), None)),
        Ok(Identity {
            user_id: "2".into(),
            group_id: None,
            impersonator: Some("9".into()),
            scopes: vec![],
            client: false,
        })
    );
    assert_eq!(
        decide(&admin, &r, &asks(None, Some("77"))),
        Ok(Identity {
            user_id: "9".into(),
            group_id: Some("77".into()),
            impersonator: Some("9".into()),
            scopes: vec![],
            client: false,
        })
    );
    let mut off = route(AuthPolicy::Authenticated);
    off.impersonation = false;
    assert!(matches!(
        decide(&admin, &off, &asks(Some("2"), None)),
        Err(Denied::Impersonation(_))
    ));
}

#[test]
fn route_policy_roles_scopes_audiences() {
    let user = principal("1", None, &[], &["read"]);
    assert!(matches!(
        decide(&user, &route(AuthPolicy::Admin), &asks(None, None)),
        Err(Denied::InsufficientScope(_))
    ));
    let mut scoped = route(AuthPolicy::Authenticated);
    scoped.scopes = vec!["read".into()];
    assert!(decide(&user, &scoped, &asks(None, None)).is_ok());
    scoped.scopes.push("write".into());
    assert!(matches!(
        decide(&user, &scoped, &asks(None, None)),
        Err(Denied::InsufficientScope(_))
    ));
    let mut aud = route(AuthPolicy::Authenticated);
    aud.audiences = vec!["other".into()];
    assert!(matches!(
        decide(&user, &aud, &asks(None, None)),
        Err(Denied::Audience(_))
    ));
    aud.audiences.push("api".into());
    assert!(decide(&user, &aud, &asks(None, None)).is_ok());
}

#[test]
fn requested_identity_is_read_in_any_spelling() {
    let user = HeaderName::from_static("user_id");
    let group = HeaderName::from_static("group_id");
    let mut headers = HeaderMap::new();
    headers.insert("User-Id", HeaderValue::from_static("5"));
    headers.insert("x_group_id", HeaderValue::from_static("6"));
    assert_eq!(
        Requested::from_headers(&headers, &user, &group),
        Ok(asks(Some("5"), Some("6")))
    );
    headers.insert("user_id", HeaderValue::from_static("7"));
    assert!(matches!(
        Requested::from_headers(&headers, &user, &group),
        Err(Denied::BadRequest(_))
    ));
}

#[test]
fn requested_ids_must_be_canonical() {
    let user = HeaderName::from_static("user_id");
    let group = HeaderName::from_static("group_id");
    for bad in [
        "01002",
        "+1002",
        "-1",
        "abc",
        "1e5",
        "1 2",
        "99999999999999999999",
    ] {
        let mut headers = HeaderMap::new();
        headers.insert("user_id", HeaderValue::from_str(bad).expect("value"));
        assert!(
            matches!(
                Requested::from_headers(&headers, &user, &group),
                Err(Denied::BadRequest(_))
            ),
            "user_id {bad}"
        );
        let mut headers = HeaderMap::new();
        headers.insert("group_id", HeaderValue::from_str(bad).expect("value"));
        assert!(
            Requested::from_headers(&headers, &user, &group).is_err(),
            "group_id {bad}"
        );
    }
    let mut headers = HeaderMap::new();
    headers.insert("user_id", HeaderValue::from_static("1002"));
    headers.insert("group_id", HeaderValue::from_static("0"));
    assert_eq!(
        Requested::from_headers(&headers, &user, &group),
        Ok(asks(Some("1002"), Some("0")))
    );
}

#[test]
fn a_token_exchange_token_names_its_admin_as_impersonator() {
    let mut acting = principal("100", Some("7"), &[], &[]);
    acting.actor = Some("1".into());
    let identity = decide(
        &acting,
        &route(AuthPolicy::Authenticated),
        &Requested::default(),
    )
    .expect("allowed");
    assert_eq!(identity.user_id, "100");
    assert_eq!(identity.impersonator.as_deref(), Some("1"));
    // It is the user's token, not an admin's: it cannot impersonate further.
    let requested = Requested {
        user_id: Some("200".into()),
        group_id: None,
    };
    assert!(decide(&acting, &route(AuthPolicy::Authenticated), &requested).is_err());
}

#[test]
fn client_tokens_only_where_a_route_accepts_them() {
    let mut svc = principal("client:svc", None, &[], &["read"]);
    svc.client_id = Some("svc".into());
    assert!(svc.is_client());
    let mut r = route(AuthPolicy::Authenticated);
    assert!(matches!(
        decide(&svc, &r, &Requested::default()),
        Err(Denied::InsufficientScope(_))
    ));
    r.allow_clients = true;
    let identity = decide(&svc, &r, &Requested::default()).expect("allowed");
    assert!(identity.client);
    assert_eq!(identity.user_id, "client:svc");
    // Not an admin, never impersonates.
    assert!(decide(&svc, &r, &asks(Some("1"), None)).is_err());
    // A user whose id merely looks like it is not a client: the client id must match.
    let mut odd = principal("client:svc", None, &[], &[]);
    odd.client_id = Some("web".into());
    assert!(!odd.is_client());
}
