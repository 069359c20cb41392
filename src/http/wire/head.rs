//! One request head (request line and header section, CRLF-terminated lines, the empty line
//! included) checked against RFC 9112's grammar and framing rules, strictly: every form some
//! parser reads one way and another parser another way is refused, not repaired.

use super::Refusal;

/// How the body of a checked request is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// What the connection needs to know of a checked head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub framing: Framing,
    /// `Upgrade` or `CONNECT`: the bytes after it may be another protocol.
    pub switches: bool,
    /// The HTTP/2 connection preface's `PRI * HTTP/2.0`.
    pub preface: bool,
    /// Where the minor version digit of `HTTP/1.x` (x > 1) sits: served as 1.1 (RFC 9110 §2.5).
    pub minor_at: Option<usize>,
}

/// The proxy's own wording (`proxy/rules.rs`), for HTTP/2 requests.
const ONE_HOST: &str = "the request must carry exactly one Host header";

const fn bad(reason: &'static str) -> Refusal {
    Refusal::new(400, reason)
}

/// RFC 9110 §5.6.2 `tchar`.
pub fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// [`is_tchar`] as a table: header names are most of a head's bytes.
const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    table
};

/// A field line (RFC 9112 §5) in one pass: `name ":" value` with a token name and a value of
/// field bytes; the value is returned untrimmed. Used for the head and the trailer section.
pub fn split_field(line: &[u8]) -> Result<(&[u8], &[u8]), Refusal> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(bad(
            "a header line starts with whitespace (obsolete line folding)",
        ));
    }
    let name_len = line.iter().take_while(|&&b| is_tchar(b)).count();
    match line.get(name_len) {
        Some(b':') if name_len > 0 => {}
        Some(b'\r') => return Err(bad("a bare CR in a header line")),
        None => return Err(bad("a header line without a colon")),
        Some(_) => {
            return Err(bad(
                "a header name that is not a token (whitespace before the colon?)",
            ));
        }
    }
    let value = &line[name_len + 1..];
    if let Some(&b) = value.iter().find(|&&b| !is_field_byte(b)) {
        return Err(bad(if b == b'\r' {
            "a bare CR in a header line"
        } else {
            "a control character in a header value"
        }));
    }
    Ok((&line[..name_len], value))
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// A field value's bytes: visible ASCII, obs-text, SP and HTAB; never CR, LF, NUL or another
/// control (RFC 9110 §5.5).
fn is_field_byte(b: u8) -> bool {
    (b >= 0x20 && b != 0x7f) || b == b'\t'
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// `head` ends with CRLF CRLF and has no LF without its CR (the caller saw to both).
pub fn check(head: &[u8]) -> Result<Head, Refusal> {
    let body = &head[..head.len() - 4];
    let mut lines = body
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    if request_line.contains(&b'\r') {
        return Err(bad("a bare CR in the request line"));
    }
    let (method, rest) =
        split_sp(request_line).ok_or(bad("the request line is not `method target version`"))?;
    let (target, version) =
        split_sp(rest).ok_or(bad("the request line is not `method target version`"))?;
    if !is_token(method) {
        return Err(bad("the method is not a token"));
    }
    if method == b"PRI" && target == b"*" && version == b"HTTP/2.0" && head.len() == 18 {
        return Ok(Head {
            framing: Framing::None,
            switches: false,
            preface: true,
            minor_at: None,
        });
    }
    let minor = check_version(version)?;
    check_target(method, target)?;
    let minor_at = (minor > 1).then(|| method.len() + target.len() + 2 + 7);
    let http10 = minor == 0;

    let (mut hosts, mut lengths, mut codings) = (0usize, Vec::new(), Vec::new());
    let mut host_value: &[u8] = b"";
    let mut upgrade = false;
    let mut content_types = 0usize;
    for line in lines {
        let (name, value) = split_field(line)?;
        let framing_field = name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"transfer-encoding");
        // Parsers differ in which whitespace they trim around a framing value (a tab, two
        // spaces, a trailing space): only `Name: value` or `Name:value` frames a body here.
        if framing_field
            && (value.starts_with(b"\t")
                || value.starts_with(b"  ")
                || value.ends_with(b" ")
                || value.ends_with(b"\t"))
        {
            return Err(bad(
                "whitespace around a Content-Length or Transfer-Encoding value",
            ));
        }
        let value = trim_ows(value);
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
            host_value = value;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            lengths.push(value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            codings.push(value);
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade = true;
        } else if name.eq_ignore_ascii_case(b"content-type") {
            content_types += 1;
        } else if name.eq_ignore_ascii_case(b"expect")
            && !value.eq_ignore_ascii_case(b"100-continue")
        {
            // RFC 9110 §10.1.1: 100-continue is the only expectation there is.
            return Err(Refusal::new(
                417,
                "the only expectation supported is 100-continue",
            ));
        }
    }
    if content_types > 1 {
        // One body, read as JSON by one parser and as a form by another.
        return Err(bad("more than one Content-Type header"));
    }
    // RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one in 1.0, and a valid one.
    if hosts > 1 {
        return Err(bad(ONE_HOST));
    }
    if hosts == 0 && !http10 {
        return Err(bad(ONE_HOST));
    }
    if hosts == 1 && !valid_host(host_value) {
        return Err(bad(
            "the Host header is not a host name or address with an optional port",
        ));
    }
    let framing = framing(&lengths, &codings, http10)?;
    Ok(Head {
        framing,
        switches: upgrade || method == b"CONNECT",
        preface: false,
        minor_at,
    })
}

/// `a SP b`: split at the first SP; neither side empty.
fn split_sp(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let sp = line.iter().position(|&b| b == b' ')?;
    let (a, b) = (&line[..sp], &line[sp + 1..]);
    (!a.is_empty() && !b.is_empty()).then_some((a, b))
}

/// `HTTP/1.x`: the minor version. Another major version is 505; anything else 400.
fn check_version(v: &[u8]) -> Result<u8, Refusal> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            if *major == b'1' {
                Ok(minor - b'0')
            } else {
                Err(Refusal::new(
                    505,
                    "only HTTP/1.x is served on this connection",
                ))
            }
        }
        _ => Err(bad("the HTTP version is not `HTTP/1.x`")),
    }
}

/// RFC 9112 §3.2's four forms, each only where it belongs; visible ASCII only; no fragment and
/// no `\` (read as `/` by some upstreams).
fn check_target(method: &[u8], target: &[u8]) -> Result<(), Refusal> {
    if target.contains(&b' ') {
        return Err(bad("whitespace in the request target"));
    }
    if !target.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
        return Err(bad(
            "the request target has a byte that is not visible ASCII",
        ));
    }
    if target.contains(&b'#') {
        return Err(bad("a fragment in the request target"));
    }
    if target.contains(&b'\\') {
        return Err(bad(
            "the path contains `\\` or `%5C`, which some upstreams read as `/`",
        ));
    }
    if method == b"CONNECT" {
        return if target.starts_with(b"/") || target == b"*" {
            Err(bad("CONNECT takes an authority (host:port)"))
        } else {
            Ok(())
        };
    }
    if target == b"*" {
        return if method == b"OPTIONS" {
            Ok(())
        } else {
            Err(bad("the asterisk form is for OPTIONS only"))
        };
    }
    if target.starts_with(b"/") {
        return Ok(());
    }
    let scheme_end = target.iter().position(|&b| b == b':').unwrap_or(0);
    let scheme = &target[..scheme_end];
    let absolute = !scheme.is_empty()
        && scheme[0].is_ascii_alphabetic()
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && target[scheme_end..].starts_with(b"://");
    if absolute {
        Ok(())
    } else {
        Err(bad(
            "the request target is not a path, an absolute URI or `*`",
        ))
    }
}

/// `Host`: a DNS name or IPv4 address (letters, digits, `-._~`) or a bracketed IPv6 address,
/// then an optional `:port`. Stricter than RFC 3986's reg-name: a comma, `@`, `/` or `%` in a
/// host name is how one parser's host becomes another's list, user or path.
fn valid_host(v: &[u8]) -> bool {
    let port = if v.first() == Some(&b'[') {
        let Some(end) = v.iter().position(|&b| b == b']') else {
            return false;
        };
        let inner = &v[1..end];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        &v[end + 1..]
    } else {
        let end = v.iter().position(|&b| b == b':').unwrap_or(v.len());
        let name = &v[..end];
        if name.is_empty()
            || !name
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
            return false;
        }
        &v[end..]
    };
    match port {
        [] => true,
        [b':', digits @ ..] => {
            (1..=5).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

/// RFC 9112 §6: how long the body is, or why that cannot be told for certain.
fn framing(lengths: &[&[u8]], codings: &[&[u8]], http10: bool) -> Result<Framing, Refusal> {
    if !codings.is_empty() {
        if http10 {
            return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        if !lengths.is_empty() {
            return Err(bad("both Content-Length and Transfer-Encoding"));
        }
        if codings.len() > 1 {
            return Err(bad("more than one Transfer-Encoding header"));
        }
        let list: Vec<&[u8]> = codings[0].split(|&b| b == b',').map(trim_ows).collect();
        if list.iter().any(|c| !is_token(c)) {
            return Err(bad("Transfer-Encoding is not a list of codings"));
        }
        let chunked = |c: &[u8]| c.eq_ignore_ascii_case(b"chunked");
        let count = list.iter().filter(|c| chunked(c)).count();
        if !list.last().is_some_and(|c| chunked(c)) || count > 1 {
            // RFC 9112 §6.3: without chunked last the length cannot be determined.
            return Err(bad("chunked must be the final transfer coding, once"));
        }
        if list.len() > 1 {
            return Err(Refusal::new(
                501,
                "only the chunked transfer coding is supported",
            ));
        }
        return Ok(Framing::Chunked);
    }
    match lengths {
        [] => Ok(Framing::None),
        [one] => {
            let canonical = !one.is_empty()
                && one.len() <= 19
                && one.iter().all(u8::is_ascii_digit)
                && (one.len() == 1 || one[0] != b'0');
            if !canonical {
                return Err(bad(
                    "Content-Length is not a decimal number without leading zeros",
                ));
            }
            let n = std::str::from_utf8(one).ok().and_then(|s| s.parse().ok());
            n.map(Framing::Length)
                .ok_or(bad("Content-Length is out of range"))
        }
        _ => Err(bad("more than one Content-Length header")),
    }
}
