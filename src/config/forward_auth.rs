//! `[forward_auth]`: authgate as the decision service of an edge proxy that is already in
//! place (nginx `auth_request`, Traefik ForwardAuth, Envoy `ext_authz`, Caddy `forward_auth`).

use ipnet::IpNet;

use super::raw::RawForwardAuth;
use super::{ConfigError, HostMatch, Resolver};

/// How a browser without a session is answered on a session route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserResponse {
    /// By the asking proxy's convention: nginx (`X-Original-URI`) turns any answer but 2xx,
    /// 401 and 403 into a 500, so it gets 401 (and the sign-in URL in `X-Authgate-Sign-In` for
    /// its `error_page`); Traefik, Caddy and Envoy pass the answer on, so they get the 302.
    Auto,
    /// Always the 302 to the sign-in page.
    Redirect,
    /// Always 401 (with `X-Authgate-Sign-In`).
    Unauthorized,
}

/// `[forward_auth]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardAuthConfig {
    /// `path` (default `/_authgate/check`): the check endpoint, and (Envoy) the prefix of
    /// `<path>/<original path>`.
    pub path: String,
    /// `allow_from` (default loopback): who may ask; their `X-Forwarded-For` is believed.
    pub allow_from: Vec<IpNet>,
    /// `allowed_return_hosts`: hosts (besides the sign-in page's own and the routes') a
    /// sign-in may return to.
    pub allowed_return_hosts: Vec<HostMatch>,
    /// `browser_response` (default `"auto"`).
    pub browser_response: BrowserResponse,
    /// `cookie_domain`: one session for this domain and its subdomains (the cookie is then
    /// `__Secure-authgate-session` with `Domain=`); `None`: host-only `__Host-` cookies.
    pub cookie_domain: Option<String>,
}

impl Resolver {
    pub(super) fn forward_auth(
        &self,
        raw: Option<&RawForwardAuth>,
    ) -> Result<Option<ForwardAuthConfig>, ConfigError> {
        let Some(raw) = raw.filter(|r| r.enabled != Some(false)) else {
            return Ok(None);
        };
        let path = raw.path.as_deref().unwrap_or("/_authgate/check");
        let normalized = crate::http::path::normalize(path).ok();
        if !path.starts_with('/')
            || path == "/"
            || path.ends_with('/')
            || normalized.as_deref() != Some(path)
        {
            return Err(self.err(
                "forward_auth.path",
                format!("`{path}` is not a normalised absolute path like \"/_authgate/check\""),
            ));
        }
        let allow_from = match &raw.allow_from {
            None => vec![
                IpNet::from(std::net::IpAddr::from([127, 0, 0, 1])).supernet_or_self(8),
                IpNet::from(std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
            ],
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    super::parse_cidr(text)
                        .map_err(|m| self.err(format!("forward_auth.allow_from[{i}]"), m))
                })
                .collect::<Result<_, _>>()?,
        };
        let allowed_return_hosts = raw
            .allowed_return_hosts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                super::route::resolve_host(text)
                    .map_err(|m| self.err(format!("forward_auth.allowed_return_hosts[{i}]"), m))
            })
            .collect::<Result<_, _>>()?;
        let browser_response = match raw.browser_response.as_deref() {
            None | Some("auto") => BrowserResponse::Auto,
            Some("redirect") => BrowserResponse::Redirect,
            Some("401") => BrowserResponse::Unauthorized,
            Some(other) => {
                return Err(self.err(
                    "forward_auth.browser_response",
                    format!("`{other}` is not one of \"auto\", \"redirect\", \"401\""),
                ));
            }
        };
        let cookie_domain = match raw.cookie_domain.as_deref() {
            None => None,
            Some(text) => match super::route::resolve_host(text.trim_start_matches('.')) {
                Ok(HostMatch::Exact(host))
                    if host.contains('.') && host.parse::<std::net::IpAddr>().is_err() =>
                {
                    Some(host)
                }
                _ => {
                    return Err(self.err(
                        "forward_auth.cookie_domain",
                        format!("`{text}` is not a domain name like \"example.com\""),
                    ));
                }
            },
        };
        Ok(Some(ForwardAuthConfig {
            cookie_domain,
            path: path.to_owned(),
            allow_from,
            allowed_return_hosts,
            browser_response,
        }))
    }
}

/// `ipnet`'s `IpNet` of one address widened to a prefix length.
trait Widen {
    fn supernet_or_self(self, len: u8) -> IpNet;
}

impl Widen for IpNet {
    fn supernet_or_self(self, len: u8) -> IpNet {
        IpNet::new(self.addr(), len).map_or(self, |net| net.trunc())
    }
}
