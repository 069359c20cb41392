//! The human-readable summary `authgate check` prints: listeners, the token endpoints (served
//! before any route), and the route table in the order requests are matched.

use std::fmt::Write;

use super::Config;

pub fn describe(config: &Config) -> String {
    let mut out = String::new();
    let server = &config.server;
    let _ = writeln!(out, "config: {} is valid", config.source.display());
    let _ = writeln!(out, "https:  {}", server.listen);
    if let Some(plain) = server.plain_listen {
        let _ = writeln!(
            out,
            "http:   {plain} (plain; behind a TLS-terminating load balancer only)"
        );
    }
    if let Some(admin) = &config.admin {
        let _ = writeln!(out, "admin:  {}", admin.listen);
    }
    if config.tls.dev_self_signed {
        let _ = writeln!(
            out,
            "tls:    DEVELOPMENT self-signed certificate ({})",
            config.tls.cert.display()
        );
    } else {
        let _ = writeln!(out, "tls:    {}", config.tls.cert.display());
    }
    if let Some(oauth2) = &config.dialects.oauth2 {
        let _ = writeln!(
            out,
            "\ntoken endpoints (oauth2 dialect, served before the routes):"
        );
        for (name, path) in [
            ("token", &oauth2.token),
            ("password", &oauth2.password),
            ("client_credentials", &oauth2.client_credentials),
            ("refresh_token", &oauth2.refresh_token),
            ("authorize", &oauth2.authorize),
            ("revoke", &oauth2.revoke),
            ("introspect", &oauth2.introspect),
        ] {
            let path = path.as_deref().unwrap_or("(off)");
            let _ = writeln!(out, "  {name:<20} POST     {path}");
        }
        for (name, path) in [
            ("authorize_page", &oauth2.authorize_page),
            ("implicit", &oauth2.implicit),
            ("logout", &oauth2.logout),
        ] {
            let path = path.as_deref().unwrap_or("(off)");
            let _ = writeln!(out, "  {name:<20} GET+POST {path} (login page)");
        }
    }
    let _ = writeln!(out, "\nroutes (first match wins, longest prefix first):");
    let mut routes: Vec<_> = config.routes.iter().enumerate().collect();
    routes.sort_by_key(|(_, r)| std::cmp::Reverse(r.prefix.len()));
    let _ = writeln!(
        out,
        "  #    name             host                 prefix               methods      auth           timeout  upstream"
    );
    for (index, route) in routes {
        let methods = match &route.methods {
            Some(list) => list
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(","),
            None => "*".to_owned(),
        };
        let mut upstream = route.upstream.to_string();
        if route.strip_prefix {
            upstream.push_str(" (strip prefix)");
        }
        if route.preserve_host {
            upstream.push_str(" (preserve host)");
        }
        let _ = writeln!(
            out,
            "  {:<4} {:<16} {:<20} {:<20} {:<12} {:<14} {:<8} {}",
            index,
            route.name,
            route
                .host
                .as_ref()
                .map_or("*".to_owned(), ToString::to_string),
            route.prefix,
            methods,
            route.auth.as_str(),
            format!("{:?}", route.timeout),
            upstream,
        );
    }
    out
}
