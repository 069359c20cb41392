use super::*;

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    }
    headers
}

fn names(list: &[&'static str]) -> IdentityNames {
    let owned: Vec<HeaderName> = list.iter().map(|n| HeaderName::from_static(n)).collect();
    IdentityNames::new(owned.iter())
}

#[test]
fn identity_names_match_in_every_spelling() {
    let identity = names(&["user_id", "group_id", "x-impersonator-id"]);
    for spelling in [
        "user_id",
        "user-id",
        "USER_ID",
        "User-Id",
        "x_user_id",
        "X-User-Id",
        "x-user_id",
        "group_id",
        "Group-Id",
        "x-group-id",
        "X-Impersonator-Id",
        "impersonator_id",
        "x_impersonator_id",
        // The loose spellings CGI, PHP and WSGI also read as the same variable.
        "userid",
        "user.id",
        "user__id",
        "x-x-user-id",
        "X-Userid",
        "groupid",
        "xx_group.id",
    ] {
        let name = HeaderName::from_bytes(spelling.as_bytes()).expect("name");
        assert!(
            identity.matches(&name),
            "{spelling} should be an identity header"
        );
    }
    for other in [
        "user",
        "user-ids",
        "x-user",
        "x-custom",
        "authorization",
        "x-",
        "x-group",
    ] {
        let name = HeaderName::from_bytes(other.as_bytes()).expect("name");
        assert!(
            !identity.matches(&name),
            "{other} should not be an identity header"
        );
    }
}

#[test]
fn remove_identity_keeps_other_headers() {
    let identity = names(&["user_id", "group_id"]);
    let mut headers = map(&[
        ("user_id", "1"),
        ("User-Id", "2"),
        ("x_group_id", "3"),
        ("accept", "*/*"),
    ]);
    remove_identity(&mut headers, &identity);
    assert_eq!(headers.len(), 1);
    assert!(headers.contains_key("accept"));
}

#[test]
fn hop_by_hop_and_connection_named_fields_go() {
    let mut headers = map(&[
        ("connection", "keep-alive, X-Foo"),
        ("connection", "x-bar"),
        ("x-foo", "1"),
        ("x-bar", "2"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("proxy-authorization", "Basic Zm9v"),
        ("te", "gzip"),
        ("trailer", "x-checksum"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("accept", "*/*"),
    ]);
    remove_hop_by_hop(&mut headers, false);
    assert_eq!(
        headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
        vec!["accept"]
    );
}

#[test]
fn connection_alone_goes_and_what_it_names_too() {
    let kept = |pairs: &[(&str, &str)]| {
        let mut headers = map(pairs);
        remove_hop_by_hop(&mut headers, false);
        let mut names: Vec<String> = headers.keys().map(|k| k.to_string()).collect();
        names.sort();
        names
    };
    assert_eq!(kept(&[("connection", "Keep-Alive"), ("a", "1")]), ["a"]);
    assert_eq!(
        kept(&[
            ("connection", "keep-alive"),
            ("connection", "x-a"),
            ("x-a", "1")
        ]),
        [] as [&str; 0]
    );
    assert_eq!(
        kept(&[("connection", "close"), ("close", "1"), ("b", "2")]),
        ["b"]
    );
    assert_eq!(
        kept(&[("connection", "keep-alive, x-a"), ("x-a", "1"), ("b", "2")]),
        ["b"]
    );
    assert_eq!(kept(&[("b", "2")]), ["b"]);
}

#[test]
fn a_connection_value_that_is_not_text_still_names_fields() {
    for value in [&b"x-a, \xe9t\xe9"[..], b"keep-alive, x-a, \xff"] {
        let mut headers = map(&[("x-a", "1")]);
        headers.append(
            "connection",
            HeaderValue::from_bytes(value).expect("obs-text"),
        );
        headers.append("b", HeaderValue::from_static("2"));
        remove_hop_by_hop(&mut headers, false);
        assert!(!headers.contains_key("x-a"), "{value:?}");
        assert!(headers.contains_key("b"));
    }
}

#[test]
fn te_trailers_survives() {
    let mut headers = map(&[("te", "trailers")]);
    remove_hop_by_hop(&mut headers, false);
    assert_eq!(
        headers.get("te").map(|v| v.as_bytes()),
        Some(&b"trailers"[..])
    );
}

#[test]
fn upgrade_is_kept_when_asked() {
    let mut headers = map(&[
        ("connection", "Upgrade, x-secret"),
        ("upgrade", "websocket"),
        ("x-secret", "s"),
    ]);
    assert!(is_upgrade_request(&headers));
    remove_hop_by_hop(&mut headers, true);
    assert_eq!(
        headers.get("upgrade").map(|v| v.as_bytes()),
        Some(&b"websocket"[..])
    );
    assert_eq!(
        headers.get("connection").map(|v| v.as_bytes()),
        Some(&b"upgrade"[..])
    );
    assert!(!headers.contains_key("x-secret"));
}

#[test]
fn connection_cannot_name_away_an_injected_header() {
    // Injection happens after hygiene, so the `Connection` list is gone by then.
    let identity = names(&["user_id"]);
    let mut headers = map(&[("connection", "user_id"), ("user_id", "evil")]);
    remove_hop_by_hop(&mut headers, false);
    remove_identity(&mut headers, &identity);
    headers.insert("user_id", HeaderValue::from_static("42"));
    assert!(!headers.contains_key(header::CONNECTION));
    assert_eq!(
        headers.get("user_id").map(|v| v.as_bytes()),
        Some(&b"42"[..])
    );
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
fn untrusted_peer_is_the_client() {
    let headers = map(&[("x-forwarded-for", "1.2.3.4")]);
    let client = client_addr(ip("10.0.0.5"), &headers, &[]);
    assert_eq!(
        client,
        ClientAddr {
            ip: ip("10.0.0.5"),
            via_trusted_proxy: false
        }
    );
}

#[test]
fn trusted_proxy_chain_is_walked_from_the_right() {
    let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("cidr")];
    let headers = map(&[
        ("x-forwarded-for", "6.6.6.6, 203.0.113.7"),
        ("x-forwarded-for", "10.1.1.1"),
    ]);
    let client = client_addr(ip("10.0.0.5"), &headers, &trusted);
    assert_eq!(client.ip, ip("203.0.113.7"));
    let garbage = map(&[("x-forwarded-for", "not-an-ip")]);
    assert_eq!(
        client_addr(ip("10.0.0.5"), &garbage, &trusted).ip,
        ip("10.0.0.5")
    );
}

#[test]
fn forwarded_headers_from_untrusted_peer_are_replaced() {
    let mut headers = map(&[
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "evil"),
        ("forwarded", "for=1.2.3.4"),
    ]);
    let peer = ip("127.0.0.1");
    let client = client_addr(peer, &headers, &[]);
    set_forwarded(&mut headers, peer, client, "https", Some("api.example.com"));
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "https");
    assert_eq!(headers["x-forwarded-host"], "api.example.com");
    assert_eq!(headers["x-real-ip"], "127.0.0.1");
    assert_eq!(
        headers["forwarded"],
        "for=127.0.0.1;proto=https;host=\"api.example.com\""
    );
}

#[test]
fn every_forwarded_spelling_from_untrusted_peer_goes() {
    let mut headers = map(&[
        ("x-forwarded-prefix", "/admin"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-server", "evil"),
        ("x-forwarded-ssl", "on"),
        ("x-forwarded-scheme", "https"),
        ("x_forwarded_for", "1.2.3.4"),
        ("x-custom", "kept"),
    ]);
    let peer = ip("192.0.2.1");
    let client = client_addr(peer, &headers, &[]);
    set_forwarded(&mut headers, peer, client, "https", None);
    let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
    for gone in [
        "x-forwarded-prefix",
        "x-forwarded-port",
        "x-forwarded-server",
        "x-forwarded-ssl",
        "x-forwarded-scheme",
        "x_forwarded_for",
    ] {
        assert!(!names.contains(&gone), "{gone} survived");
    }
    assert_eq!(headers["x-custom"], "kept");
    assert_eq!(headers["x-forwarded-for"], "192.0.2.1");
}

#[test]
fn strip_list_prefixes() {
    let identity = IdentityNames::default().with([("X-Auth-Request-", true), ("x-envoy-", true)]);
    for name in [
        "x-auth-request-user",
        "X-Auth-Request-Email",
        "x_auth_request_groups",
        "x-envoy-original-path",
    ] {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("name");
        assert!(identity.matches(&name), "{name}");
    }
    let name = HeaderName::from_static("x-auth");
    assert!(!identity.matches(&name));
}

#[test]
fn upgrades() {
    let ws = map(&[
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ]);
    assert_eq!(
        upgrade_request(&hyper::Method::GET, &ws),
        UpgradeRequest::WebSocket
    );
    assert_eq!(
        upgrade_request(&hyper::Method::POST, &ws),
        UpgradeRequest::BadWebSocket
    );
    let v8 = map(&[
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "8"),
    ]);
    assert_eq!(
        upgrade_request(&hyper::Method::GET, &v8),
        UpgradeRequest::WebSocketVersion
    );
    let no_key = map(&[("connection", "upgrade"), ("upgrade", "WebSocket")]);
    assert_eq!(
        upgrade_request(&hyper::Method::GET, &no_key),
        UpgradeRequest::BadWebSocket
    );
    let h2c = map(&[
        ("connection", "Upgrade, HTTP2-Settings"),
        ("upgrade", "h2c"),
    ]);
    assert_eq!(
        upgrade_request(&hyper::Method::GET, &h2c),
        UpgradeRequest::Other
    );
    let not_asked = map(&[("upgrade", "websocket")]);
    assert_eq!(
        upgrade_request(&hyper::Method::GET, &not_asked),
        UpgradeRequest::None
    );
}

#[test]
fn forwarded_headers_from_trusted_proxy_are_extended() {
    let trusted: Vec<IpNet> = vec!["127.0.0.0/8".parse().expect("cidr")];
    let mut headers = map(&[
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-proto", "https"),
    ]);
    let peer = ip("127.0.0.1");
    let client = client_addr(peer, &headers, &trusted);
    set_forwarded(&mut headers, peer, client, "http", Some("h"));
    assert_eq!(headers["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "https");
}

#[test]
fn request_ids() {
    assert!(valid_request_id(&HeaderValue::from_static("abc-123")));
    assert!(valid_request_id(&HeaderValue::from_static(
        "6f1c0e2a-93b1-4c6e-9d1a-1a2b3c4d5e6f"
    )));
    assert!(!valid_request_id(&HeaderValue::from_static("")));
    assert!(!valid_request_id(&HeaderValue::from_static("has space")));
    assert!(!valid_request_id(&HeaderValue::from_static("quo\"te")));
    assert!(!valid_request_id(
        &HeaderValue::from_str(&"a".repeat(129)).expect("value")
    ));
}

#[test]
fn ip_values_match_display() {
    for ip in [
        "0.0.0.0",
        "127.0.0.1",
        "10.20.30.40",
        "255.255.255.255",
        "192.168.100.9",
        "1.0.10.100",
        "::1",
        "2001:db8::42",
    ] {
        let ip: IpAddr = ip.parse().expect("ip");
        assert_eq!(ip_value(ip).to_str().expect("ascii"), ip.to_string());
    }
}

#[test]
fn a_connection_lasts_unless_the_request_ends_it() {
    use hyper::Version;
    let none = map(&[]);
    assert!(connection_lasts(Version::HTTP_11, &none));
    assert!(!connection_lasts(Version::HTTP_10, &none));
    assert!(connection_lasts(
        Version::HTTP_2,
        &map(&[("connection", "close")])
    ));
    assert!(!connection_lasts(
        Version::HTTP_11,
        &map(&[("connection", "x, Close")])
    ));
    assert!(connection_lasts(
        Version::HTTP_11,
        &map(&[("connection", "x-custom")])
    ));
    assert!(connection_lasts(
        Version::HTTP_10,
        &map(&[("connection", "Keep-Alive")])
    ));
    assert!(!connection_lasts(
        Version::HTTP_10,
        &map(&[("connection", "keep-alive, close")])
    ));
}

#[test]
fn loose_forms_agree_with_the_rule_at_every_length() {
    // The rule, spelled out: letters and digits, lower case, leading `x`s dropped.
    let reference = |name: &str| {
        let kept: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        kept.trim_start_matches('x').as_bytes().to_vec()
    };
    let long = format!("X-x_{}-Id", "User.".repeat(30));
    for name in [
        "User_Id",
        "user.id",
        "X-X-User-Id",
        "userid",
        "xxx",
        "-",
        "",
        "X-9x",
        "Xerox",
        &long,
    ] {
        assert_eq!(loose_form(name.as_bytes()), reference(name), "{name}");
    }
}
