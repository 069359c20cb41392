//! Header hygiene on the way to an upstream and back. Order matters and is fixed in
//! `Hygiene::request`: hop-by-hop headers go first (so a header named in `Connection` can only
//! remove client headers), then every client-sent identity header, then the gateway sets its
//! own `X-Forwarded-*`. Identity injection (by the auth layer) comes strictly after this.
//!
//! References: RFC 9110 §7.6.1 (Connection and hop-by-hop fields), RFC 9112 §9.6 (keep-alive),
//! RFC 9110 §7.8 (Upgrade), RFC 7239 (Forwarded), RFC 9113 §8.2.2 (connection-specific fields
//! are malformed in HTTP/2; `TE: trailers` is the one allowed value).

use std::net::IpAddr;

use hyper::HeaderMap;
use hyper::header::{self, HeaderName, HeaderValue};
use ipnet::IpNet;

use crate::http::names::folded_eq;

/// The client chain: believed from trusted proxies only, then appended to.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `http` or `https`, as the client reached the gateway.
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// The authority the client addressed.
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// The request id: the client's when valid, else generated; on the upstream request and
/// the answer.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The client address alone (nginx's convention).
pub static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// The header names a client may never send upstream: the identity names and the
/// `[identity] strip_headers` list (defaults included). Names are compared in a loose form,
/// lower case with every character that is not a letter or digit removed and leading `x`s
/// dropped, because CGI, PHP and WSGI read `-`, `_` and `.` alike and frameworks try `X-`
/// prefixes: `User_Id`, `user.id`, `X-X-User-Id` and `userid` are one name. An entry may be a
/// prefix (`X-Auth-Request-*`).
#[derive(Debug, Clone, Default)]
pub struct IdentityNames {
    /// Loose forms, sorted.
    exact: Vec<Vec<u8>>,
    /// Loose forms of the prefixes, by the [`slot`] of their first byte: a name is compared
    /// only with the prefixes that start as it does.
    prefixes: Vec<Vec<Vec<u8>>>,
    /// A filter run before the lists, because every header of every request is checked: by
    /// the loose form's first byte ([`slot`]), the lengths of the exact names starting with it
    /// (bit `len`, bit 63 for 63 and longer), and bit 0 set when a prefix starts with it.
    filter: Vec<u64>,
}

/// Loose forms are made of lower-case letters and digits: 36 possible first bytes.
const SLOTS: usize = 36;

/// Where the filter of [`IdentityNames`] keeps a loose form starting with `byte`.
fn slot(byte: u8) -> usize {
    match byte {
        b'0'..=b'9' => usize::from(byte - b'0'),
        _ => usize::from(byte.wrapping_sub(b'a')).min(25) + 10,
    }
}

/// The bit a loose form of `len` bytes sets in its slot (loose forms are never empty).
fn length_bit(len: usize) -> u64 {
    1u64 << len.min(63)
}

impl IdentityNames {
    /// Exact names (the identity headers of every route).
    pub fn new<'a>(names: impl IntoIterator<Item = &'a HeaderName>) -> Self {
        IdentityNames::default().with(names.into_iter().map(|n| (n.as_str(), false)))
    }

    /// Adds names (`(name, true)`: every name that starts with it).
    pub fn with<'a>(mut self, names: impl IntoIterator<Item = (&'a str, bool)>) -> Self {
        for (name, prefix) in names {
            let loose = loose_form(name.as_bytes());
            if loose.is_empty() {
                continue;
            }
            if prefix {
                if self.prefixes.is_empty() {
                    self.prefixes = vec![Vec::new(); SLOTS];
                }
                self.prefixes[slot(loose[0])].push(loose);
            } else {
                self.exact.push(loose);
            }
        }
        self.exact.sort();
        self.exact.dedup();
        self.filter = vec![0; SLOTS];
        for name in &self.exact {
            self.filter[slot(name[0])] |= length_bit(name.len());
        }
        for (at, prefixes) in self.prefixes.iter().enumerate() {
            if !prefixes.is_empty() {
                self.filter[at] |= 1;
            }
        }
        self
    }

    /// `name` is one of these names (or starts with a prefix) in the loose form.
    pub fn matches(&self, name: &HeaderName) -> bool {
        with_loose(name.as_str().as_bytes(), |loose| {
            let Some(&first) = loose.first() else {
                return false;
            };
            let at = slot(first);
            let filter = self.filter.get(at).copied().unwrap_or(0);
            (filter & length_bit(loose.len()) != 0
                && self
                    .exact
                    .binary_search_by(|c| c.as_slice().cmp(loose))
                    .is_ok())
                || (filter & 1 != 0 && self.prefixes[at].iter().any(|p| loose.starts_with(p)))
        })
    }
}

/// Lower case, letters and digits only, leading `x`s dropped.
pub fn loose_form(name: &[u8]) -> Vec<u8> {
    with_loose(name, <[u8]>::to_vec)
}

/// Runs `f` on the loose form of `name`, built on the stack for every real header name.
fn with_loose<T>(name: &[u8], f: impl FnOnce(&[u8]) -> T) -> T {
    let mut buffer = [0u8; 96];
    // Leading `x`s go, and whatever is not a letter or digit among them.
    let start = name
        .iter()
        .position(|&b| !matches!(LOOSE[usize::from(b)], 0 | b'x'))
        .unwrap_or(name.len());
    let rest = &name[start..];
    if rest.len() > buffer.len() {
        let loose: Vec<u8> = rest
            .iter()
            .map(|&b| LOOSE[usize::from(b)])
            .filter(|&c| c != 0)
            .collect();
        return f(&loose);
    }
    // Every byte is written and only a kept one advances: no branch per byte (this runs over
    // every header name of every request).
    let mut len = 0;
    for (&b, _) in rest.iter().zip(0..buffer.len()) {
        let c = LOOSE[usize::from(b)];
        buffer[len] = c;
        len += usize::from(c != 0);
    }
    f(&buffer[..len])
}

/// A byte's loose form: lower-cased letters and digits; 0 for anything else (dropped).
static LOOSE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if b.is_ascii_alphanumeric() {
            table[i] = b.to_ascii_lowercase();
        }
        i += 1;
    }
    table
};

/// Framing and hop-by-hop fields: a client header that is one of these once `_` is read as
/// `-` (CGI, PHP and WSGI map both to the same variable) is refused, never guessed at.
const FRAMING: [&str; 7] = [
    "transfer-encoding",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "http2-settings",
];

/// The first header whose name has a `_` and reads as a framing or hop-by-hop field.
pub fn underscore_framing(headers: &HeaderMap) -> Option<&HeaderName> {
    headers.keys().find(|name| {
        let name = name.as_str().as_bytes();
        name.contains(&b'_') && FRAMING.iter().any(|f| folded_eq(name, f.as_bytes()))
    })
}

/// How a request asks to switch protocols (RFC 9110 §7.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeRequest {
    /// No `Connection: upgrade` with an `Upgrade` field.
    None,
    /// `Upgrade: websocket` with the handshake fields RFC 6455 §4.1 requires.
    WebSocket,
    /// `Upgrade: websocket` without them, or not a GET.
    BadWebSocket,
    /// A WebSocket handshake of a version other than 13 (RFC 6455 §4.4: the only one).
    WebSocketVersion,
    /// `h2c` or anything else: removed, the request goes on as a plain one.
    Other,
}

/// What the request's `Connection`/`Upgrade` fields ask for (any method, any version).
pub fn upgrade_request(method: &hyper::Method, headers: &HeaderMap) -> UpgradeRequest {
    if !is_upgrade_request(headers) {
        return UpgradeRequest::None;
    }
    let mut values = headers.get_all(header::UPGRADE).iter();
    let websocket = match (values.next(), values.next()) {
        (Some(value), None) => value
            .to_str()
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("websocket")),
        _ => false,
    };
    if !websocket {
        return UpgradeRequest::Other;
    }
    let version_ok = headers
        .get("sec-websocket-version")
        .is_some_and(|v| !v.is_empty());
    let key_ok = headers
        .get("sec-websocket-key")
        .is_some_and(|v| !v.is_empty());
    if method != hyper::Method::GET || !version_ok || !key_ok {
        return UpgradeRequest::BadWebSocket;
    }
    let version_13 = headers
        .get("sec-websocket-version")
        .is_some_and(|v| v.as_bytes().trim_ascii() == b"13");
    if version_13 {
        UpgradeRequest::WebSocket
    } else {
        UpgradeRequest::WebSocketVersion
    }
}

/// True when the request asks to switch protocols (RFC 9110 §7.8): an `Upgrade` field and the
/// `upgrade` token in `Connection`.
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

/// Whether the client connection stays open after this request (RFC 9112 §9.3): HTTP/1.1
/// unless `Connection` says `close`, HTTP/1.0 only with `keep-alive`, HTTP/2 always.
pub fn connection_lasts(version: hyper::Version, headers: &HeaderMap) -> bool {
    if version >= hyper::Version::HTTP_2 {
        return true;
    }
    if !headers.contains_key(header::CONNECTION) {
        return version == hyper::Version::HTTP_11;
    }
    let mut close = false;
    let mut keep_alive = false;
    for token in connection_tokens(headers) {
        close |= token.eq_ignore_ascii_case("close");
        keep_alive |= token.eq_ignore_ascii_case("keep-alive");
    }
    !close && (version == hyper::Version::HTTP_11 || keep_alive)
}

/// The tokens of `Connection` as hyper reads them (a value that is not text is skipped): they
/// decide an upgrade and whether the connection lasts, so the gateway and hyper agree.
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Every token of `Connection`, as bytes: the fields to remove. A value with a byte that is not
/// text (obs-text) still names fields; read as text it was skipped whole, and the fields it
/// named were forwarded (found by `tests/properties.rs`).
fn connection_names(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop fields and every field named in `Connection`. With `keep_upgrade`, an
/// `Upgrade` field survives and `Connection: upgrade` is set again so the next hop sees the
/// protocol switch. `TE: trailers` survives (gRPC relies on it; RFC 9113 §8.2.2).
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Without any hop-by-hop field there is no `Connection` either, so nothing to do: one pass
    // over the names instead of a hashed removal per hop-by-hop name (the common request).
    let mut hop_by_hop = headers.keys().filter(|name| is_hop_by_hop(name));
    match (hop_by_hop.next(), hop_by_hop.next()) {
        (None, _) => return,
        // `Connection: keep-alive` alone (what most upstreams answer): it names only a field
        // that is absent, so removing `Connection` is all there is to do.
        (Some(name), None)
            if *name == header::CONNECTION
                && connection_names(headers).all(|t| t.eq_ignore_ascii_case(b"keep-alive")) =>
        {
            headers.remove(header::CONNECTION);
            return;
        }
        _ => {}
    }
    let upgrade = if keep_upgrade {
        headers.remove(header::UPGRADE)
    } else {
        None
    };
    // A `TE` that `Connection` names goes whole, `trailers` included.
    let te_trailers = headers.get(header::TE).is_some_and(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        })
    }) && !connection_names(headers).any(|t| t.eq_ignore_ascii_case(b"te"));
    // The fields `Connection` names besides the hop-by-hop ones, parsed once (usually none:
    // `Connection: keep-alive` is the common value, and an empty Vec does not allocate).
    let named: Vec<HeaderName> = connection_names(headers)
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .filter(|name| !is_hop_by_hop(name))
        .collect();
    // One pass over the names.
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_hop_by_hop(name) || named.contains(name))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    if let Some(upgrade) = upgrade {
        headers.insert(header::UPGRADE, upgrade);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Hop-by-hop fields that never travel past one connection (RFC 9110 §7.6.1, plus the
/// proxy-auth pair that is addressed to this proxy and the pre-standard `Proxy-Connection`).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    // A match, not a list's `contains`: it runs for every header of every request and
    // response, and compiles to a switch on the length before any comparison.
    matches!(
        name.as_str(),
        "connection"
            | "http2-settings"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Removes every header whose name is an identity name in any spelling.
pub fn remove_identity(headers: &mut HeaderMap, identity: &IdentityNames) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|n| identity.matches(n))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// Where the request came from, as far as this gateway can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    /// The subscriber's address: rate limits, login back-off and the audit source use it.
    pub ip: IpAddr,
    /// The socket peer is a configured trusted proxy, so its `X-Forwarded-*` are believed.
    pub via_trusted_proxy: bool,
}

/// The client address: the socket peer, unless the peer is a trusted proxy; then the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> ClientAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return ClientAddr {
            ip: peer,
            via_trusted_proxy: false,
        };
    }
    let mut ip = peer;
    let hops = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let entries: Vec<&str> = hops.flat_map(|v| v.split(',')).map(str::trim).collect();
    for entry in entries.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(hop) if is_trusted(&hop) => ip = hop,
            Ok(hop) => {
                return ClientAddr {
                    ip: hop,
                    via_trusted_proxy: true,
                };
            }
            Err(_) => break,
        }
    }
    ClientAddr {
        ip,
        via_trusted_proxy: true,
    }
}

/// An address as a header value; IPv4 without the formatting machinery (every request).
fn ip_value(ip: IpAddr) -> HeaderValue {
    let IpAddr::V4(v4) = ip else {
        return HeaderValue::from_maybe_shared(bytes::Bytes::from(ip.to_string()))
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
    };
    let mut text = [0u8; 15];
    let len = ipv4_text(v4, &mut text);
    HeaderValue::from_bytes(&text[..len]).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Writes `v4` in dotted decimal to `text`; returns the length.
fn ipv4_text(v4: std::net::Ipv4Addr, text: &mut [u8; 15]) -> usize {
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        let (hundreds, tens, ones) = (octet / 100, octet / 10 % 10, octet % 10);
        if hundreds > 0 {
            text[len] = b'0' + hundreds;
            len += 1;
        }
        if hundreds > 0 || tens > 0 {
            text[len] = b'0' + tens;
            len += 1;
        }
        text[len] = b'0' + ones;
        len += 1;
    }
    len
}

/// Sets `X-Forwarded-For`, `-Proto` and `-Host`, `X-Real-IP` and `Forwarded`. From an
/// untrusted peer the client's own versions are discarded; from a trusted proxy they are kept
/// and extended.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    peer: IpAddr,
    client: ClientAddr,
    proto: &'static str,
    host: Option<&str>,
) {
    // From anyone but a trusted proxy, the whole `Forwarded` / `X-Forwarded-*` family goes, in
    // every spelling (`X-Forwarded-Prefix`, `-Port`, `X_Forwarded_For`, …): frameworks build
    // redirects, links and client addresses from them. One pass over the names first.
    if !client.via_trusted_proxy {
        // Names are lower case, so one without a `w` cannot read as `forwarded…`: most names
        // are settled without building their loose form.
        let forwarded = |name: &HeaderName| {
            let name = name.as_str().as_bytes();
            name.contains(&b'w') && with_loose(name, |l| l.starts_with(b"forwarded"))
        };
        if headers.keys().any(forwarded) {
            let doomed: Vec<HeaderName> =
                headers.keys().filter(|n| forwarded(n)).cloned().collect();
            for name in doomed {
                headers.remove(name);
            }
        }
    }
    let chain: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let xff = if chain.is_empty() {
        Ok(ip_value(peer))
    } else {
        HeaderValue::from_maybe_shared(bytes::Bytes::from(format!("{}, {peer}", chain.join(", "))))
    };
    if let Ok(value) = xff {
        headers.insert(&X_FORWARDED_FOR, value);
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if let Some(host) = host.filter(|_| !headers.contains_key(&X_FORWARDED_HOST))
        && let Ok(value) = HeaderValue::from_str(host)
    {
        headers.insert(&X_FORWARDED_HOST, value);
    }
    // The client address the gateway trusts, for upstreams that read `X-Real-IP` (nginx's
    // realip convention) and RFC 7239's `Forwarded` (a trusted proxy's list is extended).
    headers.insert(&X_REAL_IP, ip_value(client.ip));
    set_rfc7239(headers, peer, client, proto, host);
}

/// `Forwarded: for=…;proto=…;host="…"` (RFC 7239 §4): from an untrusted peer one element for
/// the client; behind a trusted proxy its elements plus one for the hop to us.
fn set_rfc7239(
    headers: &mut HeaderMap,
    peer: IpAddr,
    client: ClientAddr,
    proto: &str,
    host: Option<&str>,
) {
    use std::fmt::Write as _;
    // One buffer, written once: this runs on every proxied request.
    let mut value = String::with_capacity(64);
    for existing in headers.get_all(&FORWARDED) {
        if let Ok(text) = existing.to_str() {
            value.push_str(text);
            value.push_str(", ");
        }
    }
    let node = if client.via_trusted_proxy {
        peer
    } else {
        client.ip
    };
    // Pushed piece by piece: the formatting machinery costs more than the rest of this.
    match node {
        IpAddr::V4(v4) => {
            let mut text = [0u8; 15];
            let len = ipv4_text(v4, &mut text);
            value.push_str("for=");
            value.push_str(std::str::from_utf8(&text[..len]).unwrap_or_default());
        }
        IpAddr::V6(v6) => {
            let _ = write!(value, "for=\"[{v6}]\"");
        }
    }
    value.push_str(";proto=");
    value.push_str(proto);
    if let Some(host) = host.filter(|h| {
        h.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    }) {
        value.push_str(";host=\"");
        value.push_str(host);
        value.push('"');
    }
    if let Ok(value) = HeaderValue::from_maybe_shared(bytes::Bytes::from(value)) {
        headers.insert(&FORWARDED, value);
    }
}

/// A client's request id is kept when it is short and plain; anything else is replaced, so a
/// client cannot inject log-breaking or oversized values.
pub fn valid_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=128).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+=/".contains(b))
}

/// Total size of the header section as the HTTP/2 HPACK accounting counts it (RFC 9113 §6.5.2:
/// name + value + 32 per field), so the limit means the same on HTTP/1.1 and HTTP/2.
pub fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 32)
        .sum()
}

#[cfg(test)]
mod tests;
