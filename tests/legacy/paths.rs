//! Path readings: a request needs what the strictest route selected under any reading of its
//! path needs (case-folded, `;params` removed, trailing dots/spaces removed, decoded once more,
//! `.ext` removed); shapes that upstreams read as something else are refused outright.

use crate::harness::*;
use crate::support::*;

/// `/pub` public, `/pub/secret` authenticated, `/pub/admin` admin: all to `stub`.
fn pub_routes(stub: &Stub) -> GatewayConfig {
    let u = stub.url();
    GatewayConfig::new()
        .route(&format!(
            "prefix = \"/pub\"\nupstream = \"{u}\"\nauth = \"public\""
        ))
        .route(&format!(
            "prefix = \"/pub/secret\"\nupstream = \"{u}\"\nauth = \"authenticated\""
        ))
        .route(&format!(
            "prefix = \"/pub/admin\"\nupstream = \"{u}\"\nauth = \"admin\""
        ))
}

/// Paths whose normal reading is the public `/pub` route (or no route), but which another
/// reading takes to the authenticated `/pub/secret`; with what the upstream receives when a
/// token is present (`None`: the normal reading selects no route, see below).
const SECRET_UNDER_ANOTHER_READING: &[(&str, Option<&str>)] = &[
    ("/pub/secret;x", Some("/pub/secret;x")),
    (
        "/pub/secret;jsessionid=1/x",
        Some("/pub/secret;jsessionid=1/x"),
    ),
    ("/pub/SECRET", Some("/pub/SECRET")),
    ("/PUB/Secret", None),
    ("/pub/secret.", Some("/pub/secret.")),
    ("/pub/secret%20", Some("/pub/secret%20")),
    ("/pub/secret.json", Some("/pub/secret.json")),
    ("/pub/%2573ecret", Some("/pub/%2573ecret")),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_reading_needs_the_strictest_route() {
    let stub = Stub::start(Mode::Ok).await;
    let env = Env::start(pub_routes(&stub)).await;
    let gw = &env.gw;

    // Without a token: 401 (or 404 where the normal reading selects no route: nothing is
    // forwarded then, whatever the token), nothing forwarded.
    for (path, arrives_as) in SECRET_UNDER_ANOTHER_READING {
        let before = stub.records().len();
        let r = raw_get(gw, path, "localhost", &[]).await;
        if arrives_as.is_none() {
            r.assert_error(404, "not_found");
        } else {
            r.assert_error(401, "unauthorized");
        }
        assert_not_forwarded(path, &stub, before);
    }

    // With a token: forwarded to the route of the normal reading, the path as normalised
    // today, and the verified identity injected.
    let token = env.alice();
    for (path, arrives_as) in SECRET_UNDER_ANOTHER_READING {
        let before = stub.records().len();
        let r = raw_get_with(gw, path, &[bearer(&token)]).await;
        let Some(arrives_as) = arrives_as else {
            // `/PUB/Secret`: no route under the normal reading (prefixes are case-sensitive).
            r.assert_error(404, "not_found");
            assert_not_forwarded(path, &stub, before);
            continue;
        };
        assert_eq!(r.status, 200, "{path} with a token; body {}", body_text(&r));
        let rec = forwarded_once(path, &stub, before);
        assert_eq!(rec.path, *arrives_as, "{path}: path the upstream received");
        assert_eq!(
            rec.header("user_id"),
            Some("1"),
            "{path}: {:?}",
            rec.headers
        );
        assert!(
            !rec.has_header("authorization"),
            "{path}: {:?}",
            rec.headers
        );
    }

    // A path no reading takes to a protected route stays public.
    let before = stub.records().len();
    let r = raw_get(gw, "/pub/other", "localhost", &[]).await;
    assert_eq!(r.status, 200, "/pub/other; body {}", body_text(&r));
    let rec = forwarded_once("/pub/other", &stub, before);
    assert_eq!(rec.path, "/pub/other");
    assert!(!rec.has_header("user_id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_folded_reading_of_an_admin_route_needs_an_admin() {
    let stub = Stub::start(Mode::Ok).await;
    let env = Env::start(pub_routes(&stub)).await;
    let alice = env.alice();
    for path in [
        "/pub/ADMIN",
        "/pub/Admin/x",
        "/pub/admin;a=b",
        "/pub/admin.php",
    ] {
        let r = raw_get_with(&env.gw, path, &[bearer(&alice)]).await;
        assert_raw_refusal(&format!("{path} with a non-admin token"), &r, 403);
        let r = raw_get(&env.gw, path, "localhost", &[]).await;
        assert_raw_refusal(&format!("{path} without a token"), &r, 401);
    }
    assert_not_forwarded("non-admin on an admin reading", &stub, 0);

    // An admin gets through, to the route of the normal reading.
    let r = raw_get_with(&env.gw, "/pub/ADMIN", &[bearer(&env.admin())]).await;
    assert_eq!(r.status, 200, "admin token; body {}", body_text(&r));
    let rec = stub.only();
    assert_eq!(rec.path, "/pub/ADMIN");
    assert_eq!(rec.header("user_id"), Some("9"));
}

/// Path shapes refused on every route, public ones included, whatever reading is taken.
const ALWAYS_REFUSED: &[&str] = &[
    "/pub/%5Csecret",
    "/pub/%5csecret",
    "/pub/x%5C..%5Csecret",
    "/pub/%255Csecret",
    "/pub/%255csecret",
    "/pub/x/..;/secret",
    "/pub/..;/secret",
    "/pub/.;/secret",
    "/pub/x/.;/secret",
    "/pub/%c0%ae%c0%ae/secret",
    "/pub/%C0%AE",
    "/pub/%e0%80%ae%e0%80%ae/secret",
    "/pub/%ff",
    "/pub/a%FFb",
    "/pub/%252e%252e/%252e%252e/x",
    "/pub/a%0ab",
    "/pub/a%0Db",
    "/pub/a%250db",
    "/pub/a%250Ab",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_path_shapes_are_400_on_every_route() {
    let stub = Stub::start(Mode::Ok).await;
    let env = Env::start(pub_routes(&stub)).await;
    let token = env.alice();
    for path in ALWAYS_REFUSED {
        let r = raw_get(&env.gw, path, "localhost", &[]).await;
        assert_raw_refusal(&format!("{path} without a token"), &r, 400);
        // A token changes nothing: the shape itself is refused.
        let r = raw_get_with(&env.gw, path, &[bearer(&token)]).await;
        assert_raw_refusal(&format!("{path} with a token"), &r, 400);
        assert_not_forwarded(path, &stub, 0);
    }
    // Control: a plain public path still goes through.
    let r = raw_get(&env.gw, "/pub/ok", "localhost", &[]).await;
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(stub.only().path, "/pub/ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literal_backslash_in_the_path_is_400() {
    // hyper may refuse it before the gateway sees it (then the 400 is hyper's, not JSON).
    let stub = Stub::start(Mode::Ok).await;
    let env = Env::start(pub_routes(&stub)).await;
    for target in ["/pub\\secret", "/pub/x\\..\\secret", "/pub\\"] {
        let r = raw_get(&env.gw, target, "localhost", &[]).await;
        assert_eq!(r.status, 400, "{target}; body {}", body_text(&r));
    }
    assert_not_forwarded("backslash paths", &stub, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_non_utf8_path_forwards_legacy_bytes_but_not_overlong_utf8() {
    let stub = Stub::start(Mode::Ok).await;
    let u = stub.url();
    let env = Env::start(
        GatewayConfig::new()
            .route(&format!(
                "prefix = \"/sjis\"\nupstream = \"{u}\"\nauth = \"public\"\nallow_non_utf8_path = true"
            ))
            .route(&format!(
                "prefix = \"/pub\"\nupstream = \"{u}\"\nauth = \"public\""
            )),
    )
    .await;
    let gw = &env.gw;

    // Not UTF-8, but allowed on this route: forwarded (escapes in upper-case hex, as today).
    for (path, arrives) in [
        ("/sjis/%ff", "/sjis/%FF"),
        ("/sjis/%82%a0", "/sjis/%82%A0"),
        ("/sjis/a%82%A0b", "/sjis/a%82%A0b"),
    ] {
        let before = stub.records().len();
        let r = raw_get(gw, path, "localhost", &[]).await;
        assert_eq!(r.status, 200, "{path}; body {}", body_text(&r));
        assert_eq!(forwarded_once(path, &stub, before).path, arrives, "{path}");
    }

    // Overlong UTF-8 is still refused there, and invalid UTF-8 everywhere else.
    for path in [
        "/sjis/%c0%ae",
        "/sjis/%c0%ae%c0%ae/x",
        "/sjis/%e0%80%ae",
        "/pub/%ff",
        "/pub/%82%a0",
    ] {
        let before = stub.records().len();
        let r = raw_get(gw, path, "localhost", &[]).await;
        assert_raw_refusal(path, &r, 400);
        assert_not_forwarded(path, &stub, before);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_path_parsing_refuses_paths_readings_disagree_on() {
    let stub = Stub::start(Mode::Ok).await;
    let u = stub.url();
    let env = Env::start(
        GatewayConfig::new()
            .route(&format!(
                "prefix = \"/api\"\nupstream = \"{u}\"\nauth = \"public\"\npath_parsing = \"strict\""
            ))
            .route(&format!(
                "prefix = \"/api/admin\"\nupstream = \"{u}\"\nauth = \"admin\""
            )),
    )
    .await;
    let gw = &env.gw;
    let admin = env.admin();

    for path in [
        "/api/ADMIN",
        "/api/Admin/users",
        "/api/admin;x",
        "/api/admin.json",
        "/api/admin.",
        "/api/%2561dmin",
    ] {
        let r = raw_get(gw, path, "localhost", &[]).await;
        assert_raw_refusal(&format!("{path} without a token"), &r, 400);
        // Strictness is about ambiguity, not authority: an admin is refused too.
        let r = raw_get_with(gw, path, &[bearer(&admin)]).await;
        assert_raw_refusal(&format!("{path} with an admin token"), &r, 400);
    }
    assert_not_forwarded("ambiguous paths on a strict route", &stub, 0);

    // Unambiguous paths behave as usual.
    let r = raw_get(gw, "/api/users", "localhost", &[]).await;
    assert_eq!(r.status, 200, "/api/users; body {}", body_text(&r));
    assert_eq!(forwarded_once("/api/users", &stub, 0).path, "/api/users");
    let r = raw_get(gw, "/api/admin", "localhost", &[]).await;
    assert_eq!(r.status, 401, "/api/admin without a token");
    assert_not_forwarded("/api/admin without a token", &stub, 1);
}
