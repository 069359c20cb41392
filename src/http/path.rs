//! Path normalisation (RFC 3986 §6.2.2): done once per request, before route matching; the
//! result is both what the policy decides on and what the upstream receives, so the two can
//! never disagree about which resource was asked for.
//!
//! - percent-encoded unreserved characters (`ALPHA DIGIT - . _ ~`) are decoded (§2.3), other
//!   escapes are kept with upper-case hex (§6.2.2.1);
//! - `.` and `..` segments are resolved (§5.2.4), including encoded ones (`%2e%2e`);
//! - empty segments (`//`) are collapsed;
//! - an encoded `/` (`%2F`) or NUL (`%00`) is refused: upstreams disagree on whether it
//!   separates segments, which is how prefix rules get bypassed; so is a `..` above the root.

use std::borrow::Cow;

/// Why a request path is refused (400 `invalid_request`, the message as `error_description`):
/// each variant is a way two readers could disagree about which resource is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// An origin-form path must begin with `/` (RFC 9112 §3.2.1).
    #[error("the path must start with `/`")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("the path has a malformed percent-escape")]
    BadEscape,
    /// `%2F` or `%00`: upstreams disagree on whether it separates segments.
    #[error("the path contains an encoded `/` or NUL")]
    EncodedSeparator,
    /// More `..` segments than there are segments to remove.
    #[error("the path climbs above the root with `..`")]
    EscapesRoot,
    /// A raw or encoded backslash, which some upstreams treat as a separator.
    #[error("the path contains `\\` or `%5C`, which some upstreams read as `/`")]
    Backslash,
    /// `..;` and friends: servlet containers resolve them as `..`.
    #[error("the path has a dot segment with a `;` parameter (`..;`)")]
    DotParameter,
    /// An overlong UTF-8 encoding (e.g. `%c0%ae` for `.`), which lenient decoders accept.
    #[error("the path contains an overlong UTF-8 sequence")]
    Overlong,
    /// An encoded control character (`%01`…`%1F`, `%7F`).
    #[error("the path contains an encoded control character")]
    ControlCharacter,
    /// Decoded bytes that are not UTF-8, on a route that only takes UTF-8 paths.
    #[error("the path is not UTF-8 and this route does not allow other encodings")]
    NotUtf8,
    /// The upstream's possible readings of the path select different routes, and the route
    /// is configured to refuse rather than guess.
    #[error("upstreams could read this path as a different route, and this route is strict")]
    Ambiguous,
}

/// Normalises an absolute request path (without the query string).
pub fn normalize(raw: &str) -> Result<Cow<'_, str>, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if is_normal(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    let mut segments: Vec<String> = Vec::new();
    let mut trailing_slash = false;
    for raw_segment in raw[1..].split('/') {
        let segment = decode_segment(raw_segment)?;
        trailing_slash = matches!(segment.as_str(), "" | "." | "..");
        match segment.as_str() {
            "" | "." => {}
            ".." => {
                segments.pop().ok_or(PathError::EscapesRoot)?;
            }
            _ => segments.push(segment),
        }
    }
    let mut out = String::with_capacity(raw.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// The common case, checked without allocating: no escapes, no empty or dot segments.
fn is_normal(raw: &str) -> bool {
    if raw.contains('%') {
        return false;
    }
    let mut segments = raw[1..].split('/').peekable();
    while let Some(s) = segments.next() {
        let last = segments.peek().is_none();
        if s == "." || s == ".." || (s.is_empty() && !last) {
            return false;
        }
    }
    true
}

fn decode_segment(raw: &str) -> Result<String, PathError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    // The text between escapes is copied as text: pushed byte by byte as chars, a non-ASCII
    // character (`é`) became two others (`Ã©`) whenever the path needed normalising, so
    // `/./café` and `/café` were different paths (found by `tests/properties.rs`).
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let hex = rest.get(at + 1..at + 3).ok_or(PathError::BadEscape)?;
        // Two hex digits exactly (RFC 3986 §2.1): `from_str_radix` alone also takes `+1`.
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PathError::BadEscape);
        }
        let value = u8::from_str_radix(hex, 16).map_err(|_| PathError::BadEscape)?;
        match value {
            b'/' | 0 => return Err(PathError::EncodedSeparator),
            v if v.is_ascii_alphanumeric() || b"-._~".contains(&v) => out.push(v as char),
            v => out.push_str(&format!("%{v:02X}")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> Result<String, PathError> {
        normalize(p).map(Cow::into_owned)
    }

    #[test]
    fn already_normal_paths_are_borrowed() {
        for p in ["/", "/api", "/api/", "/api/v1/users", "/a.b/c..d/.e"] {
            assert!(matches!(normalize(p), Ok(Cow::Borrowed(_))), "{p}");
        }
    }

    #[test]
    fn dot_segments_resolve() {
        assert_eq!(norm("/a/./b/../c").as_deref(), Ok("/a/c"));
        assert_eq!(norm("/a/b/..").as_deref(), Ok("/a/"));
        assert_eq!(norm("/a/b/.").as_deref(), Ok("/a/b/"));
        assert_eq!(norm("/a/%2e%2e/b").as_deref(), Ok("/b"));
        assert_eq!(norm("/a/%2E./b").as_deref(), Ok("/b"));
        assert_eq!(norm("/..").err(), Some(PathError::EscapesRoot));
        assert_eq!(norm("/../x").err(), Some(PathError::EscapesRoot));
        assert_eq!(norm("/a/../../x").err(), Some(PathError::EscapesRoot));
        assert_eq!(norm("/%2e%2e/x").err(), Some(PathError::EscapesRoot));
    }

    #[test]
    fn empty_segments_collapse() {
        assert_eq!(norm("//a//b///").as_deref(), Ok("/a/b/"));
        assert_eq!(norm("//").as_deref(), Ok("/"));
    }

    #[test]
    fn escapes() {
        assert_eq!(norm("/%41%7e%2D").as_deref(), Ok("/A~-"));
        assert_eq!(norm("/a%20b%3f").as_deref(), Ok("/a%20b%3F"));
        assert_eq!(norm("/a%2fb").err(), Some(PathError::EncodedSeparator));
        assert_eq!(norm("/a%2Fb").err(), Some(PathError::EncodedSeparator));
        assert_eq!(norm("/a%00").err(), Some(PathError::EncodedSeparator));
        assert_eq!(norm("/a%zz").err(), Some(PathError::BadEscape));
        assert_eq!(norm("/a%4").err(), Some(PathError::BadEscape));
        assert_eq!(norm("*").err(), Some(PathError::NotAbsolute));
        assert_eq!(norm("/a%+1").err(), Some(PathError::BadEscape));
        assert_eq!(norm("/a%-f/").err(), Some(PathError::BadEscape));
    }

    #[test]
    fn non_ascii_text_is_kept() {
        assert_eq!(norm("/caf\u{e9}/./x").as_deref(), Ok("/caf\u{e9}/x"));
        assert_eq!(norm("//\u{4e2d}%41").as_deref(), Ok("/\u{4e2d}A"));
        assert_eq!(norm("/\u{e9}%").err(), Some(PathError::BadEscape));
        assert_eq!(norm("/%\u{e9}").err(), Some(PathError::BadEscape));
    }

    #[test]
    fn normalising_is_idempotent() {
        for p in ["/a/./b/../c", "//x//y/", "/%41/%2e/", "/a%20b"] {
            let once = norm(p).expect("valid");
            assert_eq!(norm(&once).as_deref(), Ok(once.as_str()));
        }
    }
}
