//! Header hygiene for legacy upstreams: headers frameworks read as routing, client address,
//! method or identity are removed in every spelling; the forwarding family from untrusted
//! peers; method overrides; `_` spellings of framing headers; loose identity spellings.

use crate::harness::*;
use crate::support::*;

/// A header name compared the way the gateway compares them: every non-alphanumeric removed,
/// lower case, leading `x`s dropped.
fn canon(name: &str) -> String {
    let alnum: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    alnum.trim_start_matches('x').to_string()
}

/// The built-in names, canonical.
const DEFAULT_EXACT: &[&str] = &[
    "originalurl",
    "rewriteurl",
    "originaluri",
    "realip",
    "trueclientip",
    "clientip",
    "cfconnectingip",
    "fastlyclientip",
    "clusterclientip",
    "httpmethodoverride",
    "httpmethod",
    "methodoverride",
    "remoteuser",
    "forwardeduser",
    "forwardedemail",
    "forwardedpreferredusername",
    "webauthuser",
    "forwardedclientcert",
];
const DEFAULT_PREFIX: &[&str] = &["authrequest", "sslclient", "msclientprincipal", "envoy"];

fn is_default_stripped(name: &str) -> bool {
    let c = canon(name);
    DEFAULT_EXACT.contains(&c.as_str()) || DEFAULT_PREFIX.iter().any(|p| c.starts_with(p))
}

/// Every default, some in unusual spellings (`_`, `.`, doubled `x`, no separators, case).
const SPOOFED: &[&str] = &[
    "X-Original-URL: /pub/admin",
    "x_original_url: /pub/admin",
    "XX-Original-Url: /pub/admin",
    "X-Rewrite-URL: /pub/admin",
    "X.Rewrite.URL: /pub/admin",
    "X-Original-URI: /pub/admin",
    "X-Real-IP: 6.6.6.6",
    "x_real_ip: 6.6.6.6",
    "True-Client-IP: 6.6.6.6",
    "X-Client-IP: 6.6.6.6",
    "X_Client_IP: 6.6.6.6",
    "CF-Connecting-IP: 6.6.6.6",
    "Fastly-Client-IP: 6.6.6.6",
    "X-Cluster-Client-IP: 6.6.6.6",
    "X-HTTP-Method-Override: DELETE",
    "X-HTTP-Method: DELETE",
    "X-Method-Override: DELETE",
    "x_method_override: DELETE",
    "Remote-User: root",
    "Remote_User: root",
    "remoteuser: root",
    "X-Remote-User: root",
    "X-Forwarded-User: root",
    "X-Forwarded-Email: root@example.com",
    "X-Forwarded-Preferred-Username: root",
    "X-Auth-Request-User: root",
    "X-Auth-Request-Email: root@example.com",
    "x_auth_request_groups: admins",
    "X-WEBAUTH-USER: root",
    "X-Forwarded-Client-Cert: By=spiffe://x;URI=spiffe://y",
    "X-SSL-Client-Verify: SUCCESS",
    "X-SSL-Client-S-DN: CN=root",
    "X-MS-CLIENT-PRINCIPAL-NAME: root",
    "X-MS-CLIENT-PRINCIPAL: eyJ1c2VyIjoicm9vdCJ9",
    "X-MS-CLIENT-PRINCIPAL-ID: 9",
    "x-envoy-original-path: /pub/admin",
    "X-Envoy-Peer-Metadata: x",
    "x-custom: kept",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofable_headers_are_stripped_in_every_spelling() {
    let stub = Stub::start(Mode::Ok).await;
    let env = Env::start(GatewayConfig::new().route(&public("/pub", &stub))).await;
    let r = raw_get(&env.gw, "/pub/x", "localhost", SPOOFED).await;
    assert_eq!(r.status, 200, "{}", body_text(&r));
    let rec = stub.only();
    let leaked: Vec<&(String, String)> = rec
        .headers
        .iter()
        .filter(|(k, _)| k != "x-real-ip" && is_default_stripped(k))
        .collect();
    assert!(leaked.is_empty(), "reached upstream: {leaked:?}");
    // X-Real-IP is the gateway's own: the peer.
    assert_eq!(
        rec.header_all("x-real-ip"),
        vec!["127.0.0.1"],
        "{:?}",
        rec.headers
    );
    assert_eq!(rec.header("x-custom"), Some("kept"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_strip_headers_add_to_the_defaults_and_can_keep_one() {
    let stub = Stub::start(Mode::Ok).await;
    // The client is a trusted proxy (an mTLS terminator): from anyone else the whole
    // `X-Forwarded-*` family goes whatever the strip list says.
    let env = Env::start(
        GatewayConfig::new()
            .server("trusted_proxies = [\"127.0.0.1\"]")
            .section(
                "[identity]\nstrip_headers = [\"X-Tenant\", \"X-Corp-*\", \"!X-Forwarded-Client-Cert\"]",
            )
            .route(&public("/pub", &stub)),
    )
    .await;
    let r = raw_get(
        &env.gw,
        "/pub/x",
        "localhost",
        &[
            "X-Tenant: other",
            "x_tenant: other",
            "X-Corp-Team: admins",
            "x_corp_role: admin",
            "X-Forwarded-Client-Cert: By=spiffe://mesh/gw",
            "X-Original-URL: /pub/admin",
            "X-Auth-Request-User: root",
            "x-custom: kept",
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", body_text(&r));
    let rec = stub.only();
    for name in [
        "x-tenant",
        "x_tenant",
        "x-corp-team",
        "x_corp_role",
        "x-original-url",
        "x-auth-request-user",
    ] {
        assert!(
            !rec.has_header(name),
            "{name} reached upstream: {:?}",
            rec.headers
        );
    }
    // The `!` entry keeps that one default.
    assert_eq!(
        rec.header("x-forwarded-client-cert"),
        Some("By=spiffe://mesh/gw"),
        "{:?}",
        rec.headers
    );
    assert_eq!(rec.header("x-custom"), Some("kept"));
}

const FORWARDED_EXTRAS: &[&str] = &[
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_family_from_an_untrusted_peer_is_replaced() {
    let stub = Stub::start(Mode::Ok).await;
    let env = Env::start(GatewayConfig::new().route(&public("/pub", &stub))).await;
    let r = raw_get(
        &env.gw,
        "/pub/x",
        "front.example",
        &[
            "X-Forwarded-Port: 80",
            "X-Forwarded-Prefix: /admin",
            "X-Forwarded-Server: evil",
            "X-Forwarded-Ssl: off",
            "X-Forwarded-Scheme: http",
            "X_Forwarded_Port: 80",
            "X-Forwarded-For: 1.2.3.4",
            "X-Forwarded-Proto: http",
            "X-Forwarded-Host: evil",
            "Forwarded: for=1.2.3.4;proto=http;host=evil",
            "X-Real-IP: 1.2.3.4",
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", body_text(&r));
    let rec = stub.only();
    for name in FORWARDED_EXTRAS {
        let spoofed: Vec<&(String, String)> = rec
            .headers
            .iter()
            .filter(|(k, _)| canon(k) == canon(name))
            .collect();
        assert!(
            spoofed.is_empty(),
            "{name} from an untrusted peer reached upstream: {spoofed:?}"
        );
    }
    assert_eq!(rec.header_all("x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(rec.header_all("x-forwarded-proto"), vec!["https"]);
    assert_eq!(rec.header_all("x-forwarded-host"), vec!["front.example"]);
    assert_eq!(
        rec.header_all("x-real-ip"),
        vec!["127.0.0.1"],
        "{:?}",
        rec.headers
    );
    // RFC 7239: the gateway's own element only.
    let forwarded = rec.header_all("forwarded").join(", ");
    assert!(
        !forwarded.contains("1.2.3.4") && !forwarded.contains("evil"),
        "{forwarded:?}"
    );
    let lower = forwarded.to_ascii_lowercase();
    assert!(
        lower.contains("for=127.0.0.1") || lower.contains("for=\"127.0.0.1\""),
        "{forwarded:?}"
    );
    assert!(lower.contains("proto=https"), "{forwarded:?}");
    assert!(lower.contains("front.example"), "host in {forwarded:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_family_from_a_trusted_proxy_is_kept_and_extended() {
    let stub = Stub::start(Mode::Ok).await;
    let env = Env::start(
        GatewayConfig::new()
            .server("trusted_proxies = [\"127.0.0.1\"]")
            .route(&public("/pub", &stub)),
    )
    .await;
    let r = raw_get(
        &env.gw,
        "/pub/x",
        "front.example",
        &[
            "X-Forwarded-Port: 8443",
            "X-Forwarded-Prefix: /app",
            "X-Forwarded-Server: lb1",
            "X-Forwarded-Ssl: on",
            "X-Forwarded-Scheme: https",
            "X-Forwarded-For: 203.0.113.7",
            "X-Forwarded-Proto: https",
            "X-Forwarded-Host: app.example",
            "Forwarded: for=203.0.113.7;proto=https;host=app.example",
            "X-Real-IP: 6.6.6.6",
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", body_text(&r));
    let rec = stub.only();
    for (name, value) in [
        ("x-forwarded-port", "8443"),
        ("x-forwarded-prefix", "/app"),
        ("x-forwarded-server", "lb1"),
        ("x-forwarded-ssl", "on"),
        ("x-forwarded-scheme", "https"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "app.example"),
    ] {
        assert_eq!(
            rec.header_all(name),
            vec![value],
            "{name}: {:?}",
            rec.headers
        );
    }
    assert_eq!(
        rec.header_all("x-forwarded-for"),
        vec!["203.0.113.7, 127.0.0.1"]
    );
    // The client the gateway trusts: the right-most untrusted X-Forwarded-For entry.
    assert_eq!(
        rec.header_all("x-real-ip"),
        vec!["203.0.113.7"],
        "{:?}",
        rec.headers
    );
    // The proxy's Forwarded element first, the gateway's appended.
    let forwarded = rec.header_all("forwarded").join(", ");
    let theirs = forwarded.find("for=203.0.113.7");
    let ours = forwarded
        .rfind("for=127.0.0.1")
        .or_else(|| forwarded.rfind("for=\"127.0.0.1\""));
    assert!(
        matches!((theirs, ours), (Some(t), Some(o)) if t < o),
        "Forwarded should keep the proxy's element and append the gateway's: {forwarded:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_override_is_ignored_unless_the_route_allows_it() {
    let stub = Stub::start(Mode::Ok).await;
    let env = Env::start(
        GatewayConfig::new()
            .route(&format!(
                "prefix = \"/m\"\nupstream = \"{}\"\nauth = \"public\"\nmethods = [\"GET\", \"POST\"]",
                stub.url()
            ))
            .route(&public("/pub", &stub)),
    )
    .await;
    let gw = &env.gw;

    // The header is dropped; the method stays what the client sent.
    for (i, header) in [
        "X-HTTP-Method-Override: DELETE",
        "X-HTTP-Method: DELETE",
        "X-Method-Override: DELETE",
        "x_http_method_override: DELETE",
    ]
    .iter()
    .enumerate()
    {
        for path in ["/m", "/pub/x"] {
            let before = stub.records().len();
            let r = raw_get(gw, path, "localhost", &[header]).await;
            assert_eq!(r.status, 200, "{path} + {header}: {}", body_text(&r));
            let rec = forwarded_once(header, &stub, before);
            assert_eq!(rec.method, "GET", "{path} + {header} (#{i})");
            let leaked: Vec<&str> = rec
                .header_names()
                .into_iter()
                .filter(|n| {
                    matches!(
                        canon(n).as_str(),
                        "httpmethodoverride" | "httpmethod" | "methodoverride"
                    )
                })
                .collect();
            assert!(
                leaked.is_empty(),
                "{path} + {header}: {leaked:?} reached upstream"
            );
        }
    }

    // `_method` in the query of a route with a methods list: refused.
    for (method, target) in [
        ("GET", "/m?_method=DELETE"),
        ("POST", "/m?x=1&_method=PUT"),
        ("GET", "/m/sub?_method=delete"),
    ] {
        let before = stub.records().len();
        let r = raw_request(gw, method, target, &["Content-Length: 0"], b"").await;
        assert_raw_refusal(&format!("{method} {target}"), &r, 400);
        assert_not_forwarded(target, &stub, before);
    }

    // Without a methods list the query travels as it is.
    let before = stub.records().len();
    let r = raw_get(gw, "/pub/x?_method=DELETE", "localhost", &[]).await;
    assert_eq!(r.status, 200, "{}", body_text(&r));
    let rec = forwarded_once("/pub/x?_method=DELETE", &stub, before);
    assert_eq!(rec.method, "GET");
    assert_eq!(rec.query.as_deref(), Some("_method=DELETE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_override_on_a_route_selects_and_authorizes_by_the_overriding_method() {
    let stub = Stub::start(Mode::Ok).await;
    let u = stub.url();
    let env = Env::start(
        GatewayConfig::new()
            .route(&format!(
                "name = \"m-read\"\nprefix = \"/m\"\nupstream = \"{u}\"\nauth = \"public\"\nmethods = [\"GET\", \"POST\"]\nmethod_override = true"
            ))
            .route(&format!(
                "name = \"m-delete\"\nprefix = \"/m\"\nupstream = \"{u}\"\nauth = \"admin\"\nmethods = [\"DELETE\"]"
            ))
            .route(&format!(
                "prefix = \"/g\"\nupstream = \"{u}\"\nauth = \"public\"\nmethods = [\"GET\"]\nmethod_override = true"
            )),
    )
    .await;
    let gw = &env.gw;
    let alice = env.alice();
    let form = b"_method=DELETE";
    let form_headers = |extra: Option<&str>| {
        let mut h = vec![
            "Content-Type: application/x-www-form-urlencoded".to_string(),
            format!("Content-Length: {}", form.len()),
        ];
        if let Some(e) = extra {
            h.push(e.to_string());
        }
        h
    };

    // The overriding DELETE selects the admin route: 401 without a token, 403 for alice.
    let cases: Vec<(&str, &str, Vec<String>, &[u8])> = vec![
        (
            "POST",
            "/m",
            vec![
                "X-HTTP-Method-Override: DELETE".into(),
                "Content-Length: 0".into(),
            ],
            &b""[..],
        ),
        (
            "POST",
            "/m?_method=DELETE",
            vec!["Content-Length: 0".into()],
            &b""[..],
        ),
        ("POST", "/m", form_headers(None), &form[..]),
    ];
    for (method, target, headers, body) in &cases {
        let what = format!(
            "{method} {target} {headers:?} {:?}",
            String::from_utf8_lossy(body)
        );
        let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
        let r = raw_request(gw, method, target, &refs, body).await;
        assert_raw_refusal(&format!("{what} without a token"), &r, 401);
        let mut with_alice = refs.clone();
        let auth = bearer(&alice);
        with_alice.push(&auth);
        let r = raw_request(gw, method, target, &with_alice, body).await;
        assert_raw_refusal(&format!("{what} as alice"), &r, 403);
    }
    assert_not_forwarded("overridden to DELETE without admin", &stub, 0);

    // An admin gets through; the override travels with the request.
    let admin = bearer(&env.admin());
    let r = raw_request(
        gw,
        "POST",
        "/m",
        &[
            "X-HTTP-Method-Override: DELETE",
            "Content-Length: 0",
            admin.as_str(),
        ],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "admin override: {}", body_text(&r));
    let rec = forwarded_once("admin override", &stub, 0);
    assert_eq!(
        rec.header("x-http-method-override"),
        Some("DELETE"),
        "{:?}",
        rec.headers
    );
    assert_eq!(rec.header("user_id"), Some("9"));

    // Overriding to a method the public route allows: public.
    let r = raw_request(
        gw,
        "POST",
        "/m",
        &["X-HTTP-Method-Override: GET", "Content-Length: 0"],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "override to GET: {}", body_text(&r));
    let rec = forwarded_once("override to GET", &stub, 1);
    assert_eq!(
        rec.header("x-http-method-override"),
        Some("GET"),
        "{:?}",
        rec.headers
    );

    // A GET-only route overridden to DELETE: 405.
    let r = raw_get(gw, "/g", "localhost", &["X-HTTP-Method-Override: DELETE"]).await;
    assert_raw_refusal("GET /g overridden to DELETE", &r, 405);
    assert_not_forwarded("GET /g overridden to DELETE", &stub, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn underscore_spellings_of_framing_and_hop_by_hop_headers_are_400() {
    let stub = Stub::start(Mode::Ok).await;
    let env = Env::start(GatewayConfig::new().route(&public("/pub", &stub))).await;
    for header in [
        "Transfer_Encoding: chunked",
        "transfer_encoding: identity",
        "Content_Length: 10",
        "content_length: 0",
        "Keep_Alive: timeout=5",
        "Proxy_Connection: keep-alive",
        "Proxy_Authorization: Basic YTpi",
        "Proxy_Authenticate: Basic",
        "HTTP2_Settings: AAMAAABkAARAAAAAAAIAAAAA",
    ] {
        let r = raw_get(&env.gw, "/pub/x", "localhost", &[header]).await;
        assert_raw_refusal(header, &r, 400);
        assert_not_forwarded(header, &stub, 0);
    }
    // Other names with `_` are fine.
    let r = raw_get(&env.gw, "/pub/x", "localhost", &["X_Custom_Header: v"]).await;
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(stub.only().header("x_custom_header"), Some("v"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loose_identity_spellings_are_stripped_silently_exact_ones_keep_their_meaning() {
    let stub = Stub::start(Mode::Ok).await;
    let u = stub.url();
    let env = Env::start(
        GatewayConfig::new()
            .route(&public("/pub", &stub))
            .route(&format!(
                "prefix = \"/app\"\nupstream = \"{u}\"\nauth = \"authenticated\""
            )),
    )
    .await;
    let gw = &env.gw;
    let loose = [
        "userid: 2",
        "user.id: 2",
        "user__id: 2",
        "x-x-user-id: 2",
        "groupid: 20",
        "X-Userid: 2",
    ];
    let is_identity_like = |name: &str| matches!(canon(name).as_str(), "userid" | "groupid");

    // Public route: stripped, request proceeds.
    let r = raw_get(gw, "/pub/x", "localhost", &loose).await;
    assert_eq!(r.status, 200, "{}", body_text(&r));
    let rec = forwarded_once("public", &stub, 0);
    let leaked: Vec<&str> = rec
        .header_names()
        .into_iter()
        .filter(|n| is_identity_like(n))
        .collect();
    assert!(
        leaked.is_empty(),
        "loose identity spellings reached upstream: {leaked:?}"
    );

    // Authenticated route: stripped silently (no impersonation attempt), alice's identity
    // injected.
    let alice = bearer(&env.alice());
    let mut headers: Vec<&str> = loose.to_vec();
    headers.push(&alice);
    let r = raw_get(gw, "/app/x", "localhost", &headers).await;
    assert_eq!(r.status, 200, "{}", body_text(&r));
    let rec = forwarded_once("authenticated", &stub, 1);
    assert_eq!(rec.header_all("user_id"), vec!["1"], "{:?}", rec.headers);
    assert_eq!(rec.header_all("group_id"), vec!["10"], "{:?}", rec.headers);
    let others: Vec<&str> = rec
        .header_names()
        .into_iter()
        .filter(|n| is_identity_like(n) && *n != "user_id" && *n != "group_id")
        .collect();
    assert!(others.is_empty(), "{others:?}");

    // The exact spellings are still an impersonation request: alice may not name bob.
    for exact in ["user_id: 2", "User-Id: 2", "X-User-Id: 2", "x_user_id: 2"] {
        let r = raw_get(gw, "/app/x", "localhost", &[exact, alice.as_str()]).await;
        assert_raw_refusal(&format!("alice with {exact}"), &r, 403);
        // On a public route they are stripped.
        let before = stub.records().len();
        let r = raw_get(gw, "/pub/x", "localhost", &[exact]).await;
        assert_eq!(r.status, 200, "{exact} on public: {}", body_text(&r));
        let rec = forwarded_once(exact, &stub, before);
        let leaked: Vec<&str> = rec
            .header_names()
            .into_iter()
            .filter(|n| is_identity_like(n))
            .collect();
        assert!(leaked.is_empty(), "{exact} on public: {leaked:?}");
    }
    assert_eq!(stub.records().len(), 6, "the 403s reached nothing");
}
