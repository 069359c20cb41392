//! The route table: which configured route takes a request. Longest prefix wins, then config
//! order; a prefix matches on a segment boundary only (`/api` takes `/api` and `/api/x`, never
//! `/apiary`). Paths given to [`RouteTable::lookup`] are already normalised.

use std::sync::Arc;

use hyper::Method;

use crate::config::RouteConfig;

/// What a lookup found.
#[derive(Debug)]
pub enum RouteMatch<'a> {
    /// The route that takes the request.
    Found(&'a Arc<RouteConfig>),
    /// Some route has this host and prefix, but none allows the method.
    MethodNotAllowed(Vec<Method>),
    /// No route has this host and prefix.
    NotFound,
}

/// The configured routes, in matching order.
#[derive(Debug, Default)]
pub struct RouteTable {
    /// Sorted by prefix length, longest first; ties keep config order (stable sort).
    routes: Vec<Arc<RouteConfig>>,
}

impl RouteTable {
    /// The table of `routes` (config order breaks ties).
    pub fn new(routes: &[RouteConfig]) -> Self {
        let mut routes: Vec<Arc<RouteConfig>> = routes.iter().cloned().map(Arc::new).collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        RouteTable { routes }
    }

    /// `host` is the request's host, lower case, without port.
    pub fn lookup(&self, host: Option<&str>, path: &str, method: &Method) -> RouteMatch<'_> {
        self.lookup_as(host, path, method, false)
    }

    /// [`Self::lookup`], with `fold_case` as an upstream that matches paths case-insensitively
    /// (Express, IIS, many PHP routers) would choose.
    pub fn lookup_as(
        &self,
        host: Option<&str>,
        path: &str,
        method: &Method,
        fold_case: bool,
    ) -> RouteMatch<'_> {
        let mut allowed: Vec<Method> = Vec::new();
        for route in &self.routes {
            let host_ok = match (&route.host, host) {
                (None, _) => true,
                (Some(want), Some(have)) => want.matches(have),
                (Some(_), None) => false,
            };
            if !host_ok || !prefix_matches(&route.prefix, path, fold_case) {
                continue;
            }
            match &route.methods {
                Some(methods) if !methods.contains(method) => {
                    allowed.extend(methods.iter().cloned())
                }
                _ => return RouteMatch::Found(route),
            }
        }
        if allowed.is_empty() {
            RouteMatch::NotFound
        } else {
            allowed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            allowed.dedup();
            RouteMatch::MethodNotAllowed(allowed)
        }
    }
}

fn prefix_matches(prefix: &str, path: &str, fold_case: bool) -> bool {
    if prefix == "/" {
        return true;
    }
    let Some(head) = path.as_bytes().get(..prefix.len()) else {
        return false;
    };
    let same = if fold_case {
        head.eq_ignore_ascii_case(prefix.as_bytes())
    } else {
        head == prefix.as_bytes()
    };
    same && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
}

/// The host a request is addressed to: lower case, port removed (`[::1]:8443` → `[::1]`).
pub fn request_host(authority: &str) -> String {
    let host = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => &authority[..i],
        _ => authority,
    };
    host.to_ascii_lowercase()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{AuthPolicy, HostMatch};

    pub(crate) fn route(
        name: &str,
        host: Option<&str>,
        prefix: &str,
        methods: Option<&[Method]>,
    ) -> RouteConfig {
        RouteConfig {
            host: host.map(|h| HostMatch::Exact(h.into())),
            methods: methods.map(<[Method]>::to_vec),
            ..RouteConfig::echo(name, prefix, AuthPolicy::Public)
        }
    }

    fn found(table: &RouteTable, host: Option<&str>, path: &str, method: Method) -> Option<String> {
        match table.lookup(host, path, &method) {
            RouteMatch::Found(r) => Some(r.name.clone()),
            _ => None,
        }
    }

    #[test]
    fn longest_prefix_then_order() {
        let table = RouteTable::new(&[
            route("root", None, "/", None),
            route("api", None, "/api", None),
            route("api-v1", None, "/api/v1", None),
            route("api-again", None, "/api", Some(&[Method::GET])),
        ]);
        assert_eq!(
            found(&table, None, "/api/v1/x", Method::GET).as_deref(),
            Some("api-v1")
        );
        assert_eq!(
            found(&table, None, "/api/v2", Method::GET).as_deref(),
            Some("api")
        );
        assert_eq!(
            found(&table, None, "/other", Method::GET).as_deref(),
            Some("root")
        );
    }

    #[test]
    fn segment_boundary() {
        let table = RouteTable::new(&[route("api", None, "/api", None)]);
        assert!(found(&table, None, "/api", Method::GET).is_some());
        assert!(found(&table, None, "/api/", Method::GET).is_some());
        assert!(found(&table, None, "/api/x", Method::GET).is_some());
        assert!(found(&table, None, "/apiary", Method::GET).is_none());
        assert!(found(&table, None, "/ap", Method::GET).is_none());
    }

    #[test]
    fn host_and_methods() {
        let table = RouteTable::new(&[
            route("a", Some("a.example"), "/x", Some(&[Method::GET])),
            route("b", Some("b.example"), "/x", None),
        ]);
        assert_eq!(
            found(&table, Some("a.example"), "/x", Method::GET).as_deref(),
            Some("a")
        );
        assert_eq!(
            found(&table, Some("b.example"), "/x", Method::POST).as_deref(),
            Some("b")
        );
        assert!(found(&table, None, "/x", Method::GET).is_none());
        assert!(matches!(
            table.lookup(Some("a.example"), "/x", &Method::POST),
            RouteMatch::MethodNotAllowed(m) if m == vec![Method::GET]
        ));
        assert!(matches!(
            table.lookup(Some("c.example"), "/x", &Method::GET),
            RouteMatch::NotFound
        ));
    }

    #[test]
    fn folded_lookup() {
        let table = RouteTable::new(&[
            route("pub", None, "/pub", None),
            route("secret", None, "/pub/secret", None),
        ]);
        let folded = |path: &str| match table.lookup_as(None, path, &Method::GET, true) {
            RouteMatch::Found(r) => Some(r.name.clone()),
            _ => None,
        };
        assert_eq!(folded("/PUB/Secret/x").as_deref(), Some("secret"));
        assert_eq!(folded("/pub/SECRETS").as_deref(), Some("pub"));
        assert_eq!(
            found(&table, None, "/pub/SECRET", Method::GET).as_deref(),
            Some("pub")
        );
    }

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(request_host("API.example.com:8443"), "api.example.com");
        assert_eq!(request_host("example.com"), "example.com");
        assert_eq!(request_host("[::1]:8443"), "[::1]");
        assert_eq!(request_host("[::1]"), "[::1]");
    }
}
