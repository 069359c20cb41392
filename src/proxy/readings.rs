//! The readings of a request path that some mainstream upstream stack could take, and the
//! refusals no reading may need. The gateway decides policy on every reading (the strictest
//! selected route wins, `proxy::Proxy::select_routes`), while the request is still forwarded
//! with the path as `path::normalize` made it, so `;jsessionid=` rewriting and matrix
//! parameters keep working.
//!
//! The readings, each applied to the normalised path and to the path decoded once more:
//! - servlet containers (Tomcat, Jetty, Spring) drop `;` parameters from every segment;
//! - IIS and Windows drop trailing `.` and spaces from every segment;
//! - double-decoding upstreams (a framework decoding what the container decoded already) read
//!   `%252e` as `.`;
//! - Spring ≤ 5.2 suffix matching reads `/secret.json` as `/secret`;
//! - Express, IIS and many PHP routers match case-insensitively (handled by the route table's
//!   folded lookup, not here).
//!
//! Refused on every route (Spring's `StrictHttpFirewall` refuses the same): `\` and `%5C` in any
//! reading (IIS and some PHP routers read it as `/`), `..;` and `.;` (Tomcat resolves them as dot
//! segments after stripping the parameter), overlong UTF-8 (`%c0%ae` is `.` to a lax decoder),
//! decoded control characters, and any reading that climbs above the root. Bytes that are not
//! UTF-8 are reported ([`Readings::non_utf8`]); a route may allow them (Shift_JIS, GBK paths).

use crate::http::path::{PathError, normalize};

/// The extra readings of one path (the normalised path itself is not repeated).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Readings {
    /// Each other path an upstream stack could take the request for, normalised.
    pub paths: Vec<String>,
    /// Some reading holds bytes that are not UTF-8 (never an overlong form: that is refused).
    pub non_utf8: bool,
}

/// Checks `normal` (the output of [`normalize`]) and returns its other readings.
pub fn read(normal: &str) -> Result<Readings, PathError> {
    let mut readings = Readings::default();
    let plain = normal.is_ascii() && !normal.contains(['%', ';', '.', ' ', '\\']);
    if plain {
        // Nothing any stack could read differently but the letter case.
        return Ok(readings);
    }
    check_dot_parameters(normal)?;
    let once = percent_decode(normal.as_bytes());
    check_bytes(&once, &mut readings)?;
    let mut bases = vec![normal.to_owned()];
    if once.contains(&b'%') {
        // A double-decoding upstream: what the container decoded is decoded again. Only `%25`
        // can turn into a new escape, so that is all there is to undo before normalising.
        let twice = percent_decode(&once);
        check_bytes(&twice, &mut readings)?;
        let again = normalize(&normal.replace("%25", "%"))?.into_owned();
        check_dot_parameters(&again)?;
        bases.push(again);
    }
    for base in &bases {
        for mask in 0u8..8 {
            let mut path = base.clone();
            if mask & 1 != 0 {
                path = map_segments(&path, |s| s.split(';').next().unwrap_or(s));
            }
            if mask & 2 != 0 {
                path = map_segments(&path, trim_trailing_dots);
            }
            if mask & 4 != 0 {
                path = strip_suffix(&path);
            }
            let path = normalize(&path)?.into_owned();
            if path != normal && !readings.paths.contains(&path) {
                readings.paths.push(path);
            }
        }
    }
    Ok(readings)
}

/// `..;x` and `.;x`: a dot segment to a servlet container once its parameter is gone.
fn check_dot_parameters(path: &str) -> Result<(), PathError> {
    let dotted = path.split('/').any(|segment| {
        segment.contains(';') && matches!(segment.split(';').next(), Some("." | ".."))
    });
    if dotted {
        return Err(PathError::DotParameter);
    }
    Ok(())
}

/// Refusals on the bytes of one decoded reading.
fn check_bytes(bytes: &[u8], readings: &mut Readings) -> Result<(), PathError> {
    if bytes.contains(&b'\\') {
        return Err(PathError::Backslash);
    }
    if bytes.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(PathError::ControlCharacter);
    }
    if has_overlong(bytes) {
        return Err(PathError::Overlong);
    }
    if std::str::from_utf8(bytes).is_err() {
        readings.non_utf8 = true;
    }
    Ok(())
}

/// Overlong UTF-8 forms: the shortest-form rule a lax decoder skips (RFC 3629 §3), which
/// turns `%c0%ae` into `.` and `%e0%80%af` into `/`.
fn has_overlong(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|pair| {
        matches!(
            (pair[0], pair[1]),
            (0xc0 | 0xc1, 0x80..=0xbf) | (0xe0, 0x80..=0x9f) | (0xf0, 0x80..=0x8f)
        )
    })
}

/// Decodes every valid `%XX`; anything else stays as it is.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(value) = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(value);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn map_segments(path: &str, f: impl Fn(&str) -> &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(f(segment));
    }
    out
}

/// `secret. .` → `secret` (spaces are `%20` in a normalised path).
fn trim_trailing_dots(mut segment: &str) -> &str {
    loop {
        if let Some(rest) = segment.strip_suffix('.') {
            segment = rest;
        } else if let Some(rest) = segment.strip_suffix("%20") {
            segment = rest;
        } else {
            return segment;
        }
    }
}

/// `/a/secret.x.json` → `/a/secret` (Spring's `.*` suffix pattern takes everything after the
/// first dot of the last segment).
fn strip_suffix(path: &str) -> String {
    let last = path.rfind('/').map_or(0, |i| i + 1);
    match path[last..].find('.') {
        Some(dot) if dot > 0 => path[..last + dot].to_owned(),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readings(raw: &str) -> Result<Vec<String>, PathError> {
        let normal = normalize(raw)?;
        read(&normal).map(|r| r.paths)
    }

    fn has(raw: &str, reading: &str) -> bool {
        readings(raw).expect(raw).iter().any(|r| r == reading)
    }

    #[test]
    fn plain_paths_have_no_other_reading() {
        assert_eq!(readings("/api/v1/users"), Ok(vec![]));
        assert_eq!(readings("/"), Ok(vec![]));
    }

    #[test]
    fn servlet_parameters() {
        assert!(has("/pub/secret;x", "/pub/secret"));
        assert!(has("/pub/secret;jsessionid=1/x", "/pub/secret/x"));
        assert!(has("/pub;a=b/secret;c", "/pub/secret"));
        assert!(has("/;x/pub", "/pub"));
    }

    #[test]
    fn iis_trailing_dots_and_spaces() {
        assert!(has("/pub/secret.", "/pub/secret"));
        assert!(has("/pub/secret%20", "/pub/secret"));
        assert!(has("/pub/secret.%20.", "/pub/secret"));
        assert!(has("/pub./secret", "/pub/secret"));
    }

    #[test]
    fn double_decoding() {
        assert!(has("/pub/%2573ecret", "/pub/secret"));
        assert!(has("/pub/x/%252e%252e/secret", "/pub/secret"));
        assert_eq!(
            readings("/pub/%252e%252e/%252e%252e/x"),
            Err(PathError::EscapesRoot)
        );
        assert_eq!(
            readings("/pub/%252fsecret"),
            Err(PathError::EncodedSeparator)
        );
    }

    #[test]
    fn spring_suffixes() {
        assert!(has("/pub/secret.json", "/pub/secret"));
        assert!(has("/pub/secret.x.y", "/pub/secret"));
        assert!(!has("/pub/.hidden", "/pub/"));
    }

    #[test]
    fn combined_readings() {
        assert!(has("/pub/secret.json;x", "/pub/secret"));
        assert!(has("/pub/secret.;x", "/pub/secret"));
    }

    #[test]
    fn refusals() {
        assert_eq!(readings("/pub/secret\\"), Err(PathError::Backslash));
        assert_eq!(readings("/pub\\secret"), Err(PathError::Backslash));
        assert_eq!(readings("/pub/%5Csecret"), Err(PathError::Backslash));
        assert_eq!(readings("/pub/%5csecret"), Err(PathError::Backslash));
        assert_eq!(readings("/pub/%255Csecret"), Err(PathError::Backslash));
        assert_eq!(readings("/pub/x/..;/secret"), Err(PathError::DotParameter));
        assert_eq!(readings("/pub/..;x/secret"), Err(PathError::DotParameter));
        assert_eq!(readings("/pub/.;/secret"), Err(PathError::DotParameter));
        assert_eq!(
            readings("/pub/%2e%2e;/secret"),
            Err(PathError::DotParameter)
        );
        assert_eq!(readings("/pub/%252e%252e;/x"), Err(PathError::DotParameter));
        assert_eq!(readings("/pub/%c0%ae%c0%ae/x"), Err(PathError::Overlong));
        assert_eq!(readings("/pub/%e0%80%ae"), Err(PathError::Overlong));
        assert_eq!(readings("/pub/%f0%80%80%ae"), Err(PathError::Overlong));
        assert_eq!(readings("/pub/%25c0%25ae"), Err(PathError::Overlong));
        assert_eq!(readings("/pub/a%0ab"), Err(PathError::ControlCharacter));
        assert_eq!(readings("/pub/a%250db"), Err(PathError::ControlCharacter));
        assert_eq!(readings("/pub/a%7f"), Err(PathError::ControlCharacter));
    }

    #[test]
    fn non_utf8_is_reported_not_refused() {
        let normal = normalize("/pub/%82%a0").expect("normal");
        assert!(read(&normal).expect("read").non_utf8);
        let normal = normalize("/pub/%ff").expect("normal");
        assert!(read(&normal).expect("read").non_utf8);
        let normal = normalize("/pub/%e3%81%82").expect("normal");
        assert!(!read(&normal).expect("read").non_utf8);
    }
}
