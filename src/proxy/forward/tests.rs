//! The upstream URI: base path, stripped prefix, query.

use std::time::Duration;

use hyper::header;

use super::*;
use crate::config::AuthPolicy;

#[test]
fn upstream_uris() {
    let mut route = crate::config::RouteConfig {
        name: "svc".into(),
        host: None,
        prefix: "/svc".into(),
        methods: None,
        upstream: Upstream::Http {
            scheme: hyper::http::uri::Scheme::HTTP,
            authority: "127.0.0.1:9000".parse().expect("authority"),
            base_path: "/base".into(),
        },
        ca_file: None,
        h2c: false,
        strip_prefix: true,
        preserve_host: false,
        timeout: Duration::from_secs(1),
        max_body_bytes: 1,
        auth: AuthPolicy::Public,
        user_header: header::HeaderName::from_static("user_id"),
        group_header: header::HeaderName::from_static("group_id"),
        scopes: vec![],
        audiences: vec![],
        impersonation: true,
        identity_assertion: false,
        allow_clients: false,
        rate_limit: None,
        rules: Default::default(),
    };
    let uri = |route: &RouteConfig, path, query| {
        upstream_uri(route, path, query).expect("uri").to_string()
    };
    assert_eq!(
        uri(&route, "/svc/x", Some("q=1")),
        "http://127.0.0.1:9000/base/x?q=1"
    );
    assert_eq!(uri(&route, "/svc", None), "http://127.0.0.1:9000/base");
    assert_eq!(uri(&route, "/svc/", None), "http://127.0.0.1:9000/base/");
    route.strip_prefix = false;
    assert_eq!(
        uri(&route, "/svc/x", None),
        "http://127.0.0.1:9000/base/svc/x"
    );
    route.upstream = Upstream::Echo;
    route.strip_prefix = true;
    assert_eq!(uri(&route, "/svc", None), "/");
}
