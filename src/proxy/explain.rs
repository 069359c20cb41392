//! `authgate explain`: what the gateway would do with one request, decided by the server's own
//! code — the same path normalisation, route selection, authentication, authorization and
//! header rewriting as `Proxy::process` — without sending anything upstream, taking from a
//! rate-limit bucket or writing an audit record.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::header::HeaderValue;
use hyper::{HeaderMap, Method, Request, Uri};

use super::admission::Audit;
use super::error::ProxyError;
use super::intake::Inbound;
use super::{ConnInfo, Proxy, headers};
use crate::authz::Identity;
use crate::config::RouteConfig;

/// Who answers the request.
pub enum Target {
    /// The gateway itself: a token endpoint or the JWKS document.
    Gateway(String),
    /// The route the request is forwarded on (or was refused on).
    Route(Arc<RouteConfig>),
    /// Nothing: the refusal says why.
    None,
}

/// What the serving code decided about one request, for `authgate explain`.
pub struct Explanation {
    /// The request's method, as sent.
    pub method: Method,
    /// The request's URI, as sent (before normalisation).
    pub uri: Uri,
    /// Who answers it.
    pub target: Target,
    /// Why the request would be refused, if it would.
    pub refusal: Option<ProxyError>,
    /// The identity the upstream would be told (none on public routes).
    pub identity: Option<Identity>,
    /// What the client sent (once forwarding is decided: what survives the stripping) and,
    /// when it would be forwarded, what the upstream receives.
    pub sent: HeaderMap,
    /// The client's headers the gateway removes before anything is added (hop-by-hop ones and
    /// identity headers in every spelling; `Authorization` unless it is forwarded).
    pub stripped: Vec<String>,
    /// The upstream URI and headers, when the request would be forwarded.
    pub forwarded: Option<(Uri, HeaderMap)>,
}

impl Proxy {
    /// Explains `request` as if it came from `peer` over TLS (`tls`) or plain HTTP.
    pub async fn explain(&self, request: Request<()>, peer: SocketAddr, tls: bool) -> Explanation {
        let mut explanation = Explanation {
            method: request.method().clone(),
            uri: request.uri().clone(),
            target: Target::None,
            refusal: None,
            identity: None,
            sent: request.headers().clone(),
            stripped: Vec::new(),
            forwarded: None,
        };
        if let Err(error) = self.plan(request, peer, tls, &mut explanation).await {
            explanation.refusal = Some(error);
        }
        explanation
    }

    /// The serving stages on `request`, up to what the upstream would receive.
    async fn plan(
        &self,
        request: Request<()>,
        peer: SocketAddr,
        tls: bool,
        out: &mut Explanation,
    ) -> Result<(), ProxyError> {
        let path = self.intake.screen(&request)?;
        if let Some(own) = self.own.find(&path) {
            out.target = Target::Gateway(own.describe(&path));
            return Ok(());
        }
        let mut origin = self
            .intake
            .origin(ConnInfo { peer, tls }, request.headers());
        origin.request_id = HeaderValue::from_static("explain");
        let (mut parts, ()) = request.into_parts();
        // No body: a form's `_method` is not seen here (the override headers and query are).
        let mut body = Inbound::Buffered(bytes::Bytes::new());
        let mut seen = None;
        let prepared = self.prepare(&parts, &mut body, &path, &origin, Audit::DryRun, &mut seen);
        let prepared = match prepared.await {
            Ok(prepared) => prepared,
            Err(error) => {
                // The route the request was refused on still explains.
                if let Some(route) = seen {
                    out.target = Target::Route(route);
                }
                return Err(error);
            }
        };
        out.target = Target::Route(Arc::clone(&prepared.selection.route));
        out.identity = prepared.identity.clone();
        let mut kept = parts.headers.clone();
        headers::remove_hop_by_hop(&mut kept, prepared.upgrade);
        headers::remove_identity(&mut kept, self.identity.names());
        self.rewrite(&mut parts, &prepared, &origin, &path)?;
        out.stripped = out
            .sent
            .keys()
            .filter(|name| !kept.contains_key(*name) || !parts.headers.contains_key(*name))
            .map(|name| name.as_str().to_owned())
            .collect();
        out.sent = kept;
        out.forwarded = Some((parts.uri, parts.headers));
        Ok(())
    }
}

impl Explanation {
    /// The explanation for a person.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "request:  {} {}", self.method, self.uri);
        match &self.target {
            Target::Gateway(what) => {
                let _ = writeln!(out, "answered: by the gateway itself: {what}");
            }
            Target::Route(route) => describe_route(&mut out, route),
            Target::None => {}
        }
        match (&self.refusal, &self.identity) {
            (Some(error), _) => {
                let _ = writeln!(
                    out,
                    "refused:  {} {}: {error}",
                    error.status().as_u16(),
                    error.code()
                );
            }
            (None, Some(identity)) => {
                let _ = write!(out, "token:    accepted: user {}", identity.user_id);
                if let Some(group) = &identity.group_id {
                    let _ = write!(out, ", group {group}");
                }
                if let Some(admin) = &identity.impersonator {
                    let _ = write!(out, ", acted for by admin {admin}");
                }
                let _ = writeln!(out);
            }
            (None, None) if matches!(self.target, Target::Route(_)) => {
                let _ = writeln!(out, "token:    not needed (public route)");
            }
            (None, None) => {}
        }
        let Some((uri, received)) = &self.forwarded else {
            return out;
        };
        let _ = writeln!(out, "upstream: {} {uri}", self.method);
        let stripped = if self.stripped.is_empty() {
            "-".to_owned()
        } else {
            self.stripped.join(", ")
        };
        let _ = writeln!(out, "stripped: {stripped}");
        let _ = writeln!(out, "set:");
        for (name, value) in received {
            let changed = self.sent.get_all(name).iter().all(|sent| sent != value);
            if changed {
                let _ = writeln!(out, "  {name}: {}", value.to_str().unwrap_or("<binary>"));
            }
        }
        let _ = writeln!(out, "the upstream receives:");
        for (name, value) in received {
            let _ = writeln!(out, "  {name}: {}", value.to_str().unwrap_or("<binary>"));
        }
        out
    }
}

fn describe_route(out: &mut String, route: &RouteConfig) {
    let _ = writeln!(
        out,
        "route:    {:?}: the longest matching prefix {} (host {}, methods {}) → {}",
        route.name,
        route.prefix,
        route
            .host
            .as_ref()
            .map_or("any".to_owned(), |h| h.to_string()),
        route.methods.as_ref().map_or("any".to_owned(), |m| {
            m.iter().map(Method::as_str).collect::<Vec<_>>().join(",")
        }),
        route.upstream,
    );
    let limit = route.rate_limit.as_ref().map_or("none".to_owned(), |l| {
        format!(
            "{} per {:?} (burst {}) by {}",
            l.requests,
            l.per,
            l.burst,
            match l.key {
                crate::config::RateKey::User => "user",
                crate::config::RateKey::Client => "client address",
            }
        )
    });
    // Shown only when set, so the line of a route without the key is as it always was.
    let groups = if route.allowed_groups.is_empty() {
        String::new()
    } else {
        format!(", groups [{}]", route.allowed_groups.join(" "))
    };
    let _ = writeln!(
        out,
        "policy:   auth {}, scopes [{}], audiences [{}]{groups}, impersonation {}, clients {}, rate limit {limit}",
        route.auth.as_str(),
        route.scopes.join(" "),
        route.audiences.join(" "),
        if route.impersonation {
            "allowed to admins"
        } else {
            "off"
        },
        if route.allow_clients {
            "allowed"
        } else {
            "refused"
        },
    );
}
