//! The human-readable summary `authgate check` prints: listeners, the token endpoints (served
//! before any route), and the route table in the order requests are matched.

use std::fmt::Write;

use super::Config;

/// One path the gateway answers itself (a token endpoint, a login page, a key set).
#[derive(Debug, Clone)]
pub struct Served {
    /// The exact path (after normalisation) the gateway answers.
    pub path: String,
    /// The methods it answers, as shown (`POST`, `GET,POST`).
    pub methods: &'static str,
    /// The dialect that serves it (`oauth2`, `passport`, …).
    pub dialect: &'static str,
    /// One line for the operator: what the endpoint does.
    pub what: &'static str,
}

/// `served`: what the gateway answers before the routes (`dialects::served` and the JWKS).
pub fn describe(config: &Config, served: &[Served]) -> String {
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
    write_served(&mut out, served);
    if let Some(check) = &config.forward_auth {
        let from: Vec<String> = check.allow_from.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "\nforward-auth: {0} and {0}/<original path> (Envoy), asked from {1}",
            check.path,
            from.join(", ")
        );
    }
    write_routes(&mut out, config);
    for warning in warnings(config) {
        let _ = writeln!(out, "\nwarning: {warning}");
    }
    out
}

/// The exact paths the gateway answers before any route is matched.
fn write_served(out: &mut String, served: &[Served]) {
    let _ = writeln!(
        out,
        "\nanswered by the gateway itself, before the routes (exact paths):"
    );
    let _ = writeln!(
        out,
        "  {:<40} {:<10} {:<10} what",
        "path", "methods", "dialect"
    );
    for entry in served {
        let _ = writeln!(
            out,
            "  {:<40} {:<10} {:<10} {}",
            entry.path, entry.methods, entry.dialect, entry.what
        );
    }
}

/// The route table in matching order (longest prefix first, then file order).
fn write_routes(out: &mut String, config: &Config) {
    let _ = writeln!(
        out,
        "\nroutes, in the order they are matched (longest prefix first, then file order):"
    );
    let mut routes: Vec<_> = config.routes.iter().enumerate().collect();
    routes.sort_by_key(|(_, r)| std::cmp::Reverse(r.prefix.len()));
    let _ = writeln!(
        out,
        "  #  config      name             host                 prefix               methods      auth           timeout  upstream"
    );
    for (order, (index, route)) in routes.into_iter().enumerate() {
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
            "  {:<2} {:<11} {:<16} {:<20} {:<20} {:<12} {:<14} {:<8} {}",
            order + 1,
            format!("routes[{index}]"),
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
}

/// Valid, but probably not what a production gateway wants: `authgate check` says so.
pub fn warnings(config: &Config) -> Vec<String> {
    use super::Upstream;
    let mut warnings = Vec::new();
    let listeners = std::iter::once(config.server.listen).chain(config.server.plain_listen);
    if config.tls.dev_self_signed {
        for addr in listeners.filter(|a| !a.ip().is_loopback()) {
            warnings.push(format!(
                "tls.dev_self_signed = true while listening on {addr}: clients cannot verify a development certificate; set a real tls.cert/tls.key"
            ));
        }
    }
    for (i, net) in config.server.trusted_proxies.iter().enumerate() {
        if net.prefix_len() == 0 {
            warnings.push(format!(
                "server.trusted_proxies[{i}] = {net} trusts every address: any client can then forge X-Forwarded-For (rate limits, back-off, audit)"
            ));
        }
    }
    for (i, route) in config.routes.iter().enumerate() {
        let Upstream::Http {
            scheme, authority, ..
        } = &route.upstream
        else {
            continue;
        };
        let host = authority.host().trim_matches(['[', ']']);
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if route.auth != super::AuthPolicy::Public
            && *scheme == hyper::http::uri::Scheme::HTTP
            && !loopback
        {
            warnings.push(format!(
                "routes[{i}] `{}` is authenticated but its upstream {} is plain http to another host: the identity headers cross the network in clear text",
                route.name, route.upstream
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("gateway.toml");
        let head = "[server]\nlisten = \"127.0.0.1:0\"\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
        std::fs::write(&path, format!("{head}{toml}")).expect("write");
        super::super::load(&path).expect("valid")
    }

    #[test]
    fn risky_but_valid_settings_are_warned_about() {
        let quiet = config(
            "[[routes]]\nprefix = \"/a\"\nupstream = \"http://127.0.0.1:9\"\n\
             [[routes]]\nprefix = \"/b\"\nupstream = \"http://10.0.0.5:9\"\nauth = \"public\"\n\
             [[routes]]\nprefix = \"/c\"\nupstream = \"https://api.internal\"\n",
        );
        assert!(warnings(&quiet).is_empty(), "{:?}", warnings(&quiet));
        let plain = config("[[routes]]\nprefix = \"/a\"\nupstream = \"http://10.0.0.5:9\"\n");
        assert!(
            warnings(&plain)[0].contains("routes[0]"),
            "{:?}",
            warnings(&plain)
        );
        let mut open = config("");
        open.server.trusted_proxies = vec!["0.0.0.0/0".parse().expect("net")];
        assert!(warnings(&open)[0].contains("trusted_proxies[0]"));
        let mut exposed = config("");
        exposed.tls.dev_self_signed = true;
        exposed.server.listen = "0.0.0.0:8443".parse().expect("addr");
        assert!(warnings(&exposed)[0].contains("dev_self_signed"));
    }
}
