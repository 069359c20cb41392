//! The upstream URI: base path, stripped prefix, query.

use super::*;

#[test]
fn upstream_uris() {
    let mut route = crate::proxy::routes::tests::route("svc", None, "/svc", None);
    route.upstream = Upstream::Http {
        scheme: hyper::http::uri::Scheme::HTTP,
        authority: "127.0.0.1:9000".parse().expect("authority"),
        base_path: "/base".into(),
    };
    route.strip_prefix = true;
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
