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

fn restricted(groups: &[&str]) -> RouteConfig {
    let mut r = route(AuthPolicy::Authenticated);
    r.allowed_groups = groups.iter().map(|g| g.to_string()).collect();
    r
}

fn refused_for_group(result: Result<Identity, Denied>) -> bool {
    matches!(result, Err(Denied::InsufficientScope(m)) if m == "your group may not use this route")
}

#[test]
fn allowed_groups_admit_only_the_listed_groups() {
    let r = restricted(&["7", "idp:12"]);
    let seven = principal("1", Some("7"), &[], &[]);
    assert!(decide(&seven, &r, &asks(None, None)).is_ok());
    assert!(refused_for_group(decide(
        &principal("2", Some("8"), &[], &[]),
        &r,
        &asks(None, None)
    )));
    // An external issuer's prefixed group is compared as text.
    assert!(
        decide(
            &principal("idp:5", Some("idp:12"), &[], &[]),
            &r,
            &asks(None, None)
        )
        .is_ok()
    );
    assert!(refused_for_group(decide(
        &principal("idp:5", Some("12"), &[], &[]),
        &r,
        &asks(None, None)
    )));
    // No group at all (an issuer without a group claim): refused.
    assert!(refused_for_group(decide(
        &principal("3", None, &[], &[]),
        &r,
        &asks(None, None)
    )));
    // Without the key, every group (and none) passes.
    assert!(
        decide(
            &principal("3", None, &[], &[]),
            &route(AuthPolicy::Authenticated),
            &asks(None, None)
        )
        .is_ok()
    );
    // Naming your own group is not acting for another one: still your group.
    assert!(decide(&seven, &r, &asks(Some("1"), Some("7"))).is_ok());
}

#[test]
fn admins_do_not_bypass_allowed_groups_but_may_act_in_an_allowed_one() {
    let r = restricted(&["7"]);
    let admin = principal("9", Some("1"), &["admin"], &[]);
    assert!(refused_for_group(decide(&admin, &r, &asks(None, None))));
    // As the admin of group 7, or as a user with group 7 named: the forwarded group is 7.
    assert!(decide(&admin, &r, &asks(None, Some("7"))).is_ok());
    assert!(decide(&admin, &r, &asks(Some("2"), Some("7"))).is_ok());
    assert!(refused_for_group(decide(
        &admin,
        &r,
        &asks(None, Some("8"))
    )));
    assert!(refused_for_group(decide(
        &admin,
        &r,
        &asks(Some("2"), Some("8"))
    )));
    // As a user without naming a group: the store says which (admission checks it then).
    let pending = decide(&admin, &r, &asks(Some("2"), None)).expect("decided later");
    assert_eq!(pending.group_id, None);
    assert!(check_group(&r, &pending).is_err());
    let filled = Identity {
        group_id: Some("7".into()),
        ..pending
    };
    assert_eq!(check_group(&r, &filled), Ok(()));
    // Impersonation switched off: refused as impersonation, before any group.
    let mut off = restricted(&["7"]);
    off.impersonation = false;
    assert!(matches!(
        decide(&admin, &off, &asks(None, Some("7"))),
        Err(Denied::Impersonation(_))
    ));
}

#[test]
fn a_client_acting_for_itself_has_no_group_to_allow() {
    let mut svc = principal("client:svc", Some("7"), &[], &[]);
    svc.client_id = Some("svc".into());
    let mut r = restricted(&["7"]);
    r.allow_clients = true;
    // Even a group claim does not count: a client's request is forwarded without a group.
    assert!(refused_for_group(decide(&svc, &r, &Requested::default())));
    r.allowed_groups.clear();
    assert!(decide(&svc, &r, &Requested::default()).is_ok());
}
