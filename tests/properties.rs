//! Property tests (issue 26) of the parsers that see client bytes, through the public API:
//! path normalisation, header-name spellings, hop-by-hop and identity header hygiene (directly
//! and end to end through `Proxy::explain`), bearer extraction, form/JSON/Basic parsing, the
//! grant syntax every dialect shares, JWT parsing before and after the signature, the config
//! loader, and the wire check of HTTP/1 bytes (`http::wire`: valid requests pass whole, and
//! no verdict depends on how the bytes are cut into reads). Private parsers have a `mod properties` beside them (`proxy/session.rs`,
//! `dialects/login.rs`, `dialects/login/signin.rs`).
//!
//! Every property says what must hold for *any* input, not for a few chosen ones; failures
//! are shrunk to a small case and printed. Nothing is written to disk (no
//! `proptest-regressions`): a case worth keeping becomes an ordinary unit test.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::borrow::Cow;
use std::sync::Arc;

use authgate::authn::keyset::{KeySet, VerifyingKey};
use authgate::authn::{AuthnError, IssuerPolicy, NoRevocations, RequestDefect, Verifier};
use authgate::dialects::form::{Form, FormError, basic_credentials};
use authgate::dialects::grant_type::{GrantSyntax, missing};
use authgate::grant::{GrantRequest, Login};
use authgate::http::names::{folded_eq, same_identity_name};
use authgate::http::path::normalize;
use authgate::proxy::headers::{IdentityNames, loose_form, remove_hop_by_hop, remove_identity};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

/// `cases` per property, and no regression files written into the repository.
fn cases(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Text of `min..=max` characters: mostly printable ASCII, the characters parsers treat
/// specially, and now and then any character at all (a `\PC` regex costs far more per case
/// in a debug build).
fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
    let special = vec![
        '&',
        '=',
        '%',
        '+',
        ';',
        ':',
        '"',
        '\\',
        '\0',
        '\u{e9}',
        '\u{4e2d}',
        '\u{1f600}',
    ];
    let char = prop_oneof![
        6 => prop::char::range(' ', '~'),
        2 => prop::sample::select(special),
        1 => any::<char>(),
    ];
    prop::collection::vec(char, min..=max).prop_map(String::from_iter)
}

// ---------------------------------------------------------------------------------------------
// Path normalisation (`http::path`).

/// Segments that exercise every rule of the normaliser, and anything at all.
fn path_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "", ".", "..", "%2e", "%2E%2e", ".%2E", "%2f", "%2F", "%00", "%", "%4", "%zz", "%41",
            "%7e", "%7E", "%20", "%c0%ae", "..;", ";x", "\\", "%5c", "é", "%C3%A9", "a?b", "#",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z0-9._~-]{1,6}",
        "[^/]{0,4}",
        "(%[0-9a-fA-F]{2}){1,3}",
    ]
}

fn raw_path() -> impl Strategy<Value = String> {
    prop::collection::vec(path_piece(), 0..10).prop_map(|s| format!("/{}", s.join("/")))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

/// The escapes in `path`, decoded (`None` for a malformed one).
fn escapes(path: &str) -> Vec<Option<u8>> {
    let bytes = path.as_bytes();
    (0..bytes.len())
        .filter(|&i| bytes[i] == b'%')
        .map(|i| {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            let upper = hex.bytes().all(|b| !b.is_ascii_lowercase());
            u8::from_str_radix(hex, 16).ok().filter(|_| upper)
        })
        .collect()
}

proptest! {
    #![proptest_config(cases(4000))]

    /// Never panics; a normalised path is absolute, normal (normalising it again borrows it
    /// unchanged), has no dot or empty segment, no encoded unreserved character, separator or
    /// NUL, and only upper-case escapes.
    #[test]
    fn normalised_paths_are_normal(raw in prop_oneof![raw_path(), any::<String>()]) {
        let Ok(out) = normalize(&raw) else { return Ok(()) };
        prop_assert!(out.starts_with('/'), "{out:?}");
        prop_assert_eq!(normalize(&out), Ok(Cow::Borrowed(out.as_ref())), "not idempotent");
        let segments: Vec<&str> = out[1..].split('/').collect();
        for (i, segment) in segments.iter().enumerate() {
            prop_assert!(*segment != "." && *segment != "..", "{out:?}");
            prop_assert!(!segment.is_empty() || i + 1 == segments.len(), "{out:?}");
        }
        for escape in escapes(&out) {
            let byte = escape.ok_or_else(|| TestCaseError::fail(format!("bad escape {out:?}")))?;
            prop_assert!(!is_unreserved(byte) && byte != b'/' && byte != 0, "{out:?}");
        }
    }

    /// An encoded `/` or NUL anywhere is refused, whatever else the path holds.
    #[test]
    fn encoded_separators_are_refused(
        before in raw_path(),
        escape in prop::sample::select(vec!["%2f", "%2F", "%00"]),
        after in "[^%]{0,8}",
    ) {
        let raw = format!("{before}{escape}{after}");
        prop_assert!(normalize(&raw).is_err(), "{raw:?}");
    }

    /// A `%` not followed by two hex digits is refused, whatever else the path holds.
    #[test]
    fn malformed_escapes_are_refused(
        before in raw_path(),
        escape in "%(.?|[^0-9a-fA-F].|.[^0-9a-fA-F])",
        after in "([^%0-9a-fA-F][^%]{0,7})?",
    ) {
        let raw = format!("{before}{escape}{after}");
        prop_assert!(normalize(&raw).is_err(), "{raw:?}");
    }

    /// Equivalent spellings of one path normalise to the same path: unreserved characters
    /// percent-encoded (either hex case), `.` segments, `x/..` detours and doubled slashes
    /// added. Non-ASCII characters are kept as they are.
    #[test]
    fn equivalent_paths_normalise_alike(
        segments in prop::collection::vec(
            ("[a-zA-Z0-9_~-][a-zA-Z0-9._~\u{e9}\u{4e2d}-]{0,5}", any::<u64>()),
            0..6,
        ),
        trailing in any::<bool>(),
    ) {
        let mut canonical = String::new();
        let mut variant = String::new();
        for (segment, noise) in &segments {
            canonical.push('/');
            canonical.push_str(segment);
            match noise >> 60 {
                0 => variant.push_str("/."),
                1 => variant.push_str("/zz/.."),
                2 => variant.push('/'),
                3 => variant.push_str("/%2e"),
                _ => {}
            }
            variant.push('/');
            for (i, c) in segment.chars().enumerate() {
                let encode = noise >> (i % 48) & 1 == 1;
                if encode && c.is_ascii() && is_unreserved(c as u8) {
                    let hex = if noise >> 50 & 1 == 1 { format!("%{:02x}", c as u8) } else { format!("%{:02X}", c as u8) };
                    variant.push_str(&hex);
                } else {
                    variant.push(c);
                }
            }
        }
        if trailing || canonical.is_empty() {
            canonical.push('/');
            variant.push('/');
        }
        let (once, other) = (normalize(&canonical), normalize(&variant));
        prop_assert_eq!(once.as_deref(), Ok(canonical.as_str()));
        prop_assert_eq!(other.as_deref(), Ok(canonical.as_str()), "{:?}", variant);
    }
}

// ---------------------------------------------------------------------------------------------
// Header-name spellings and header hygiene (`http::names`, `proxy::headers`).

/// The identity and strip-list names a client may try to smuggle, as written in config.
const SMUGGLED: [&str; 12] = [
    "user_id",
    "group_id",
    "X-Impersonator-Id",
    "X-Client-Id",
    "X-User",
    "Remote-User",
    "X-Auth-Request-Email",
    "X-Forwarded-User",
    "X-Real-IP",
    "X-HTTP-Method-Override",
    "X-Amzn-Oidc-Identity",
    "Cf-Access-Jwt-Assertion",
];

/// One spelling of `base` as an upstream stack might still read it: case, `-`/`_`/`.`/none
/// between words, `x-` style prefixes.
fn spelling(base: &'static str) -> impl Strategy<Value = String> {
    let prefix = prop::sample::select(vec!["", "", "x-", "x_", "X-X-", "x", "xx-", "-", "_", "X."]);
    let separators = prop::collection::vec(prop::sample::select(vec!["-", "_", ".", "", "--"]), 8);
    (prefix, separators, any::<u64>()).prop_map(move |(prefix, separators, case)| {
        let mut words = base.split(['-', '_']);
        let mut name = prefix.to_owned();
        name.push_str(words.next().unwrap_or_default());
        for (word, separator) in words.zip(separators.iter().cycle()) {
            name.push_str(separator);
            name.push_str(word);
        }
        name.chars()
            .enumerate()
            .map(|(i, c)| {
                if case >> (i % 64) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    })
}

fn smuggled_spelling() -> impl Strategy<Value = String> {
    prop::sample::select(SMUGGLED.to_vec()).prop_flat_map(spelling)
}

/// The identity names of the tests' config, with the default strip list, as the proxy builds
/// them (`proxy/identity.rs`).
fn identity_names() -> IdentityNames {
    let names: Vec<HeaderName> = ["user_id", "group_id", "x-impersonator-id", "x-client-id"]
        .iter()
        .map(|n| HeaderName::from_static(n))
        .collect();
    let strip =
        authgate::config::DEFAULT_STRIP_HEADERS
            .iter()
            .map(|entry| match entry.strip_suffix('*') {
                Some(prefix) => (prefix, true),
                None => (*entry, false),
            });
    IdentityNames::new(&names).with(strip)
}

/// `name` is an entry of [`authgate::config::DEFAULT_STRIP_HEADERS`] or an identity name, in
/// the loose form.
fn stripped_name(name: &str) -> bool {
    let loose = loose_form(name.as_bytes());
    ["user_id", "group_id", "x-impersonator-id", "x-client-id"]
        .iter()
        .any(|n| loose_form(n.as_bytes()) == loose)
        || authgate::config::DEFAULT_STRIP_HEADERS.iter().any(|entry| {
            match entry.strip_suffix('*') {
                Some(prefix) => loose.starts_with(&loose_form(prefix.as_bytes())),
                None => loose_form(entry.as_bytes()) == loose,
            }
        })
}

/// Header names: identity spellings, hop-by-hop names, and ordinary ones.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => smuggled_spelling(),
        2 => prop::sample::select(HOP_BY_HOP.to_vec()).prop_map(str::to_owned),
        2 => prop::sample::select(vec!["x-custom", "foo", "x-secret", "accept", "x-app-data", "cookie"])
            .prop_map(str::to_owned),
        1 => "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,100}",
    ]
}

const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "http2-settings",
];

/// Header values: ids, ordinary text, and now and then bytes that are not UTF-8.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec![
            "100",
            "101",
            "1",
            "trailers",
            "h2c",
            "close",
            "keep-alive",
            "gzip"
        ])
        .prop_map(|v| v.as_bytes().to_vec()),
        "[ -~]{0,16}".prop_map(String::into_bytes),
        prop::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')], 0..12),
    ]
}

/// `Connection` values naming other headers (and now and then a byte that is not UTF-8).
fn connection_value() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(header_name(), 0..4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(names, close, obs)| {
            let mut value = names.join(if close { " ,  " } else { "," }).into_bytes();
            if obs {
                value.extend_from_slice(b", \xe9t\xe9");
            }
            value
        })
}

fn header_map() -> impl Strategy<Value = HeaderMap> {
    (
        prop::collection::vec((header_name(), header_value()), 0..12),
        prop::collection::vec(connection_value(), 0..3),
    )
        .prop_map(|(fields, connections)| {
            let mut map = HeaderMap::new();
            for (name, value) in fields {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_bytes(&value),
                ) {
                    map.append(name, value);
                }
            }
            for value in connections {
                if let Ok(value) = HeaderValue::from_bytes(&value) {
                    map.append(hyper::header::CONNECTION, value);
                }
            }
            map
        })
}

/// The tokens `Connection` names, lower case, as bytes (any value, UTF-8 or not).
fn connection_named(headers: &HeaderMap) -> Vec<Vec<u8>> {
    headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|t| t.trim_ascii().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

proptest! {
    #![proptest_config(cases(4000))]

    /// Every spelling of an identity name is the same identity name in the loose sense, and
    /// the exact sense (`same_identity_name`) is an equivalence its loose form agrees with.
    #[test]
    fn spellings_are_one_name(spelled in spelling("user_id"), other in header_name()) {
        let Ok(name) = HeaderName::from_bytes(spelled.as_bytes()) else { return Ok(()) };
        let user = HeaderName::from_static("user_id");
        prop_assert_eq!(loose_form(name.as_str().as_bytes()), b"userid".to_vec());
        prop_assert!(same_identity_name(&name, &name));
        if let Ok(other) = HeaderName::from_bytes(other.as_bytes()) {
            prop_assert_eq!(same_identity_name(&name, &other), same_identity_name(&other, &name));
            if same_identity_name(&other, &user) {
                prop_assert_eq!(loose_form(other.as_str().as_bytes()), b"userid".to_vec());
            }
            let (a, b) = (name.as_str().as_bytes(), other.as_str().as_bytes());
            prop_assert_eq!(folded_eq(a, b), folded_eq(b, a));
        }
    }

    /// After `remove_identity`, no header is an identity or strip-list name in any spelling,
    /// and every other header is kept with all its values.
    #[test]
    fn no_identity_header_survives(headers in header_map()) {
        let names = identity_names();
        let mut out = headers.clone();
        remove_identity(&mut out, &names);
        for name in headers.keys() {
            let doomed = stripped_name(name.as_str());
            prop_assert_eq!(names.matches(name), doomed, "{}", name);
            if doomed {
                prop_assert!(!out.contains_key(name), "{} survived", name);
            } else {
                let before: Vec<_> = headers.get_all(name).iter().collect();
                let after: Vec<_> = out.get_all(name).iter().collect();
                prop_assert_eq!(before, after, "{} changed", name);
            }
        }
    }

    /// After `remove_hop_by_hop`, no hop-by-hop field and nothing `Connection` names is left
    /// (but `TE: trailers`), and every other header is kept as sent; with `keep_upgrade`, a
    /// sent `Upgrade` is kept with `Connection: upgrade`.
    #[test]
    fn hop_by_hop_headers_never_pass(headers in header_map(), keep_upgrade in any::<bool>()) {
        let named = connection_named(&headers);
        let mut out = headers.clone();
        remove_hop_by_hop(&mut out, keep_upgrade);
        let upgrade = keep_upgrade && headers.contains_key(hyper::header::UPGRADE);
        for (name, value) in &out {
            let n = name.as_str();
            match n {
                "te" => prop_assert_eq!(value.as_bytes(), b"trailers"),
                "upgrade" if upgrade => {}
                "connection" if upgrade => prop_assert_eq!(value.as_bytes(), b"upgrade"),
                _ => {
                    prop_assert!(!HOP_BY_HOP.contains(&n), "{} forwarded", n);
                    prop_assert!(!named.iter().any(|t| t == n.as_bytes()), "{} named in Connection, forwarded", n);
                }
            }
        }
        for name in headers.keys() {
            let n = name.as_str();
            if !HOP_BY_HOP.contains(&n) && !named.iter().any(|t| t == n.as_bytes()) {
                let before: Vec<_> = headers.get_all(name).iter().collect();
                let after: Vec<_> = out.get_all(name).iter().collect();
                prop_assert_eq!(before, after, "{} changed", n);
            }
        }
    }
}

/// End to end, through the serving code's own stages (`Proxy::explain`: screen, route,
/// admission, rewrite) with an admin's token: whatever headers a client sends, the upstream
/// gets exactly the injected identity under the identity names, no other spelling of them,
/// nothing of the strip list but what the gateway sets itself, no hop-by-hop header, nothing
/// `Connection` names, no credential and none of the gateway's cookies.
#[test]
fn the_upstream_sees_only_the_injected_identity() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (setup, assembled, bearer) = runtime.block_on(async {
        let setup = harness::setup().await;
        let config = authgate::config::load(&setup.gw.config_path).unwrap();
        let assembled = authgate::server::assemble(&config).await.unwrap();
        let token = setup.login("web", "boss").await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        (setup, assembled, format!("Bearer {token}"))
    });
    let cookie = prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec![
                "__Host-authgate-session=s",
                " __HOST-AUTHGATE-SESSION = t",
                "authgate_csrf=c",
                "authgate_session=o",
                "a=1",
                "PHPSESSID=z",
                "",
                " ",
            ])
            .prop_map(str::to_owned),
            "[ -:<-~]{0,10}",
        ],
        0..5,
    )
    .prop_map(|pairs| pairs.join(";"));
    let strategy = (header_map(), prop::option::of(cookie), any::<bool>());
    let forwarded = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = TestRunner::new(cases(2000));
    let result = runner.run(&strategy, |(mut headers, cookie, token_header)| {
        headers.insert("host", HeaderValue::from_static("gw.test"));
        headers.insert("authorization", HeaderValue::from_str(&bearer).unwrap());
        if token_header {
            headers.append("access-token", HeaderValue::from_static("x"));
        }
        if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.append("cookie", cookie);
        }
        let named = connection_named(&headers);
        let mut request = hyper::Request::get("/echo/x").body(()).unwrap();
        *request.headers_mut() = headers;
        let peer = "198.51.100.7:40000".parse().unwrap();
        let e = runtime.block_on(assembled.proxy.explain(request, peer, true));
        let Some((_, received)) = &e.forwarded else {
            return Ok(());
        };
        forwarded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let identity = e.identity.as_ref().unwrap();
        let values = |name: &str| -> Vec<&[u8]> {
            received
                .get_all(name)
                .iter()
                .map(HeaderValue::as_bytes)
                .collect()
        };
        prop_assert_eq!(values("user_id"), vec![identity.user_id.as_bytes()]);
        let group: Vec<&[u8]> = identity.group_id.iter().map(|g| g.as_bytes()).collect();
        prop_assert_eq!(values("group_id"), group);
        let admin: Vec<&[u8]> = identity.impersonator.iter().map(|g| g.as_bytes()).collect();
        prop_assert_eq!(values("x-impersonator-id"), admin);
        prop_assert_eq!(values("x-real-ip"), vec![&b"198.51.100.7"[..]]);
        let ours = [
            "user_id",
            "group_id",
            "x-impersonator-id",
            "x-real-ip",
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "forwarded",
            "x-request-id",
            "host",
        ];
        for name in received.keys() {
            let n = name.as_str();
            if ours.contains(&n) {
                continue;
            }
            prop_assert!(!stripped_name(n), "{} reached the upstream", n);
            prop_assert!(
                !HOP_BY_HOP.contains(&n) || n == "te",
                "{} reached the upstream",
                n
            );
            prop_assert!(
                !named.iter().any(|t| t == n.as_bytes()),
                "{} (named in Connection) reached the upstream",
                n
            );
            prop_assert!(n != "authorization" && n != "access-token");
        }
        for value in received.get_all("cookie") {
            for pair in value.as_bytes().split(|b| *b == b';') {
                let name = pair
                    .split(|b| *b == b'=')
                    .next()
                    .unwrap_or_default()
                    .trim_ascii();
                for gateway in [
                    "__host-authgate-session",
                    "authgate_csrf",
                    "authgate_session",
                ] {
                    prop_assert!(
                        !name.eq_ignore_ascii_case(gateway.as_bytes()),
                        "{:?}",
                        value
                    );
                }
            }
        }
        Ok(())
    });
    drop(setup);
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let forwarded = forwarded.into_inner();
    assert!(
        forwarded > 300,
        "only {forwarded} of 2000 requests were forwarded"
    );
}

// ---------------------------------------------------------------------------------------------
// Bearer extraction (`authn::extract_token`).

fn token68() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._~+/-]{1,40}=*"
}

proptest! {
    #![proptest_config(cases(4000))]

    /// Any `Authorization` and token-header values: no panic; a token found is non-empty,
    /// token68 when it came from `Authorization`, and refused when there are two.
    #[test]
    fn bearer_extraction_is_total(
        authorization in prop::collection::vec(header_value(), 0..3),
        schemes in prop::collection::vec(prop::sample::select(vec!["Bearer ", "bearer  ", "BEARER ", "Basic ", "Bearer", ""]), 3),
        access in prop::collection::vec(header_value(), 0..2),
    ) {
        let mut headers = HeaderMap::new();
        for (value, scheme) in authorization.iter().zip(&schemes) {
            let mut bytes = scheme.as_bytes().to_vec();
            bytes.extend_from_slice(value);
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                headers.append("authorization", value);
            }
        }
        for value in &access {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                headers.append("access-token", value);
            }
        }
        let token_headers = [HeaderName::from_static("access-token")];
        if let Ok(token) = authgate::authn::extract_token(&headers, &token_headers) {
            prop_assert!(!token.is_empty());
            prop_assert_eq!(token.trim(), token);
            let from_authorization = headers.get_all("authorization").iter().any(|v| {
                v.to_str().is_ok_and(|v| v.split_once(' ').is_some_and(|(_, rest)| rest.trim_start_matches(' ') == token))
            });
            if from_authorization {
                prop_assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)), "{:?}", token);
            }
        }
    }

    /// A well-formed `Bearer` token is found exactly; the same request with a second token
    /// (another `Authorization` or a token header) is refused.
    #[test]
    fn bearer_tokens_are_found(
        token in token68(),
        scheme in prop::sample::select(vec!["Bearer", "bearer", "BeArEr"]),
        spaces in 1usize..4,
        second in token68(),
        via_header in any::<bool>(),
    ) {
        let mut headers = HeaderMap::new();
        let value = format!("{scheme}{}{token}", " ".repeat(spaces));
        headers.append("authorization", HeaderValue::from_str(&value).unwrap());
        let token_headers = [HeaderName::from_static("access-token")];
        prop_assert_eq!(authgate::authn::extract_token(&headers, &token_headers), Ok(token.as_str()));
        if via_header {
            headers.append("access-token", HeaderValue::from_str(&second).unwrap());
        } else {
            headers.append("authorization", HeaderValue::from_str(&format!("Bearer {second}")).unwrap());
        }
        prop_assert_eq!(
            authgate::authn::extract_token(&headers, &token_headers),
            Err(AuthnError::InvalidRequest(RequestDefect::TwoTokens))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Form, JSON and Basic parsing (`dialects::form`) and the grant syntax (`dialects::grant_type`).

/// Parameter names, few enough that repeats happen.
fn param_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "grant_type",
            "username",
            "password",
            "refresh_token",
            "code",
            "redirect_uri",
            "code_verifier",
            "resource",
            "scope",
            "client_id",
        ])
        .prop_map(str::to_owned),
        text(1, 6),
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text(0, 8).prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(0, 6), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn grant_syntax() -> GrantSyntax {
    GrantSyntax {
        accepted: &[
            "password",
            "refresh_token",
            "authorization_code",
            "client_credentials",
        ],
        login: Login::AnyName,
        missing,
    }
}

proptest! {
    #![proptest_config(cases(4000))]

    /// Any bytes: parsing never panics.
    #[test]
    fn form_parsing_is_total(body in prop::collection::vec(any::<u8>(), 0..200), content_type in "[ -~]{0,40}") {
        let _ = Form::parse(&body);
        let _ = Form::from_json(&body);
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&content_type) {
            headers.insert("content-type", value);
        }
        let _ = Form::from_body(&headers, &body);
        if let Ok(value) = HeaderValue::from_bytes(&body) {
            headers.insert("authorization", value);
            let _ = basic_credentials(&headers);
        }
    }

    /// A form of any parameters reads back as written: a value (never empty) per name, the
    /// repeatable `resource` in order, and any other repeated name refused.
    #[test]
    fn forms_read_back(pairs in prop::collection::vec((param_name(), text(0, 10)), 0..8)) {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        let mut seen = std::collections::HashMap::new();
        let mut repeated = None;
        for (name, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
            if name != "resource" && seen.insert(name, value).is_some() && repeated.is_none() {
                repeated = Some(name.clone());
            }
        }
        match Form::parse(body.as_bytes()) {
            Ok(form) => {
                prop_assert_eq!(repeated, None);
                for (name, value) in &seen {
                    prop_assert_eq!(form.get(name), Some(value.as_str()));
                }
                let resources: Vec<&String> = pairs.iter()
                    .filter(|(n, v)| n == "resource" && !v.is_empty())
                    .map(|(_, v)| v)
                    .collect();
                prop_assert_eq!(form.all("resource").iter().collect::<Vec<_>>(), resources);
            }
            Err(FormError::Repeated(name)) => prop_assert_eq!(Some(name), repeated),
            Err(other) => prop_assert!(false, "{other}"),
        }
    }

    /// Any JSON: no panic; an object of scalars reads back as text, anything else is refused.
    #[test]
    fn json_bodies_read_back(value in json_value()) {
        let body = serde_json::to_vec(&value).unwrap();
        // What serde_json reads back (its float parsing may differ in the last digit).
        let value: Value = serde_json::from_slice(&body).unwrap();
        let parsed = Form::from_json(&body);
        let Value::Object(object) = &value else {
            prop_assert_eq!(parsed, Err(FormError::Json));
            return Ok(());
        };
        let scalars = object.values().all(|v| !v.is_array() && !v.is_object());
        prop_assert_eq!(parsed.is_ok(), scalars);
        if let Ok(form) = parsed {
            for (name, v) in object {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                prop_assert_eq!(form.get(name), Some(text.as_str()).filter(|t| !t.is_empty()));
            }
        }
    }

    /// HTTP Basic credentials of any id and secret (form-urlencoded, then base64, RFC 6749
    /// §2.3.1) read back exactly, whatever the scheme's case and the padding around it.
    #[test]
    fn basic_credentials_read_back(
        id in text(1, 12),
        secret in text(0, 12),
        scheme in prop::sample::select(vec!["Basic", "basic", "BASIC"]),
        pad in " {0,2}",
    ) {
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = STANDARD.encode(format!("{}:{}", encode(&id), encode(&secret)));
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_str(&format!("{pad}{scheme} {pair}{pad}")).unwrap());
        prop_assert_eq!(basic_credentials(&headers), Ok(Some((id, secret))));
    }

    /// Any `grant_type` and parameters: no panic, and a grant is only made with every
    /// parameter it requires present and non-empty.
    #[test]
    fn grant_syntax_is_total(
        grant_type in prop_oneof![
            prop::sample::select(vec!["password", "refresh_token", "authorization_code", "client_credentials", "implicit", ""]).prop_map(str::to_owned),
            text(0, 20),
        ],
        pairs in prop::collection::vec((param_name(), text(0, 6)), 0..8),
    ) {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        let Ok(mut form) = Form::parse(body.as_bytes()) else { return Ok(()) };
        let before = form.clone();
        match grant_syntax().parse(&grant_type, &mut form) {
            Ok(GrantRequest::Password { password, .. }) => {
                prop_assert!(!password.is_empty());
                prop_assert!(before.get("username").is_some());
            }
            Ok(GrantRequest::RefreshToken { refresh_token }) => prop_assert!(!refresh_token.is_empty()),
            Ok(GrantRequest::AuthorizationCode { code, .. }) => prop_assert!(!code.is_empty()),
            Ok(GrantRequest::ClientCredentials) => prop_assert_eq!(grant_type, "client_credentials"),
            Ok(_) => prop_assert!(false, "an unexpected grant"),
            Err(_) => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JWT parsing before and after the signature (`authn::Verifier`).

const ISSUER: &str = "https://gw.test";

struct Jwt {
    verifier: Verifier,
    key: EncodingKey,
}

fn jwt() -> &'static Jwt {
    static JWT: std::sync::OnceLock<Jwt> = std::sync::OnceLock::new();
    JWT.get_or_init(|| {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let keys = Arc::new(KeySet::default());
        let public = DecodingKey::from_ec_pem(pair.public_key_pem().as_bytes()).unwrap();
        keys.insert(
            ISSUER,
            "k1",
            VerifyingKey::new(Algorithm::ES256, public).unwrap(),
        );
        let policy = IssuerPolicy {
            issuer: ISSUER.into(),
            algorithms: vec![Algorithm::ES256, Algorithm::RS256],
            audiences: Vec::new(),
            accepted_types: vec!["at+jwt".into()],
            user_claim: "sub".into(),
            group_claim: Some("gid".into()),
            roles_claim: Some("roles".into()),
            subject_prefix: None,
            delegation: true,
            require_client_id: false,
        };
        Jwt {
            verifier: Verifier::new(keys, vec![policy], 5, 0, Arc::new(NoRevocations)),
            key: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
        }
    })
}

/// A JOSE header: mostly plausible fields, sometimes any JSON.
fn jose_header() -> impl Strategy<Value = Value> {
    let alg = prop::sample::select(vec![
        "ES256", "RS256", "HS256", "none", "EdDSA", "es256", "",
    ]);
    let field = prop_oneof![
        alg.prop_map(|a| ("alg".to_owned(), Value::from(a))),
        prop::sample::select(vec!["at+jwt", "JWT", ""])
            .prop_map(|t| ("typ".to_owned(), Value::from(t))),
        prop::sample::select(vec!["k1", "k2", ""]).prop_map(|k| ("kid".to_owned(), Value::from(k))),
        json_value().prop_map(|v| ("crit".to_owned(), v)),
        (text(0, 5), json_value()),
    ];
    prop_oneof![
        4 => prop::collection::vec(field, 0..5).prop_map(|f| Value::Object(f.into_iter().collect())),
        1 => json_value(),
    ]
}

/// Claims: the ones the verifier reads, with values of any JSON type.
fn claims() -> impl Strategy<Value = serde_json::Map<String, Value>> {
    let now = jsonwebtoken::get_current_timestamp();
    let scalar_or_any = |good: Value| prop_oneof![3 => Just(good), 1 => json_value()];
    let id = prop_oneof![
        "[0-9]{1,4}".prop_map(Value::String),
        text(0, 10).prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        json_value(),
    ];
    (
        scalar_or_any(Value::from(ISSUER)),
        scalar_or_any(Value::from(now + 600)),
        id.clone(),
        prop::option::of(id.clone()),
        prop::option::of(json_value()),
        prop::option::of(id.prop_map(|sub| serde_json::json!({ "sub": sub }))),
        prop::option::of(scalar_or_any(Value::from(now - 10))),
        prop::collection::vec((text(1, 5), json_value()), 0..3),
    )
        .prop_map(|(iss, exp, sub, gid, scope, act, nbf, extra)| {
            let mut claims: serde_json::Map<String, Value> = extra.into_iter().collect();
            claims.insert("iss".into(), iss);
            claims.insert("exp".into(), exp);
            claims.insert("sub".into(), sub);
            let optional = [("gid", gid), ("scope", scope), ("act", act), ("nbf", nbf)];
            for (name, value) in optional {
                if let Some(value) = value {
                    claims.insert(name.into(), value);
                }
            }
            claims
        })
}

/// What becomes an identity header: one plain header value.
fn forwardable(id: &str) -> bool {
    HeaderValue::from_str(id).is_ok()
        && !id.is_empty()
        && !id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',')
}

proptest! {
    #![proptest_config(cases(3000))]

    /// Any text, and any three base64url parts of any JSON: no panic, and never accepted
    /// without a signature.
    #[test]
    fn unsigned_tokens_are_refused(
        text in prop_oneof![any::<String>(), "[A-Za-z0-9_.=-]{0,60}"],
        header in jose_header(),
        claims in claims(),
        signature in "[A-Za-z0-9_-]{0,90}",
    ) {
        prop_assert!(jwt().verifier.verify(&text).is_err());
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        let token = format!("{}.{}.{signature}", part(&header), part(&Value::Object(claims)));
        prop_assert!(jwt().verifier.verify(&token).is_err(), "{}", token);
    }
}

proptest! {
    #![proptest_config(cases(2000))]

    /// Tokens signed by the trusted key with any claims: no panic, and an accepted one names
    /// a user (and group, and actor) that is one plain header value.
    #[test]
    fn signed_tokens_yield_forwardable_ids(claims in claims(), typ in prop::sample::select(vec!["at+jwt", "AT+JWT", "JWT"])) {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        header.typ = Some(typ.into());
        let token = jsonwebtoken::encode(&header, &claims, &jwt().key).unwrap();
        if let Ok(principal) = jwt().verifier.verify(&token) {
            prop_assert!(forwardable(&principal.user_id), "{:?}", principal.user_id);
            for id in principal.group_id.iter().chain(principal.actor.iter()) {
                prop_assert!(forwardable(id), "{:?}", id);
            }
            prop_assert_eq!(principal.issuer.as_str(), ISSUER);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The config loader (`config::load`): the shipped `gateway.toml`, mutated.

const SHIPPED: &str = include_str!("../gateway.toml");

/// A value of some TOML type, often the wrong one for its key.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "\"\"",
            "0",
            "-1",
            "\"0s\"",
            "\"1x\"",
            "true",
            "[]",
            "[\"a\"]",
            "{}",
            "\"\u{fc}n\u{ef}\"",
            "18446744073709551616",
            "\"999999999999999d\"",
            "\"213503982334601d\"",
            "\"18446744073709551615ms\"",
            "\"16EiB\"",
            "\"18446744073709551615GiB\"",
            "1e400",
            "\"/\"",
            "\"//x\"",
            "\"/a/../b\"",
            "\"%2F\"",
            "\"*\"",
            "\"!X-User\"",
            "[\"!X-User\"]",
            "[\"X-*\", \"*\"]",
            "\"0.0.0.0/0\"",
            "\"::/0\"",
            "\"http://[::1\"",
            "\"https://\"",
            "\"builtin:echo\"",
            "\"unix:/x\"",
            "\"sqlite::memory:\"",
            "\"postgres://\"",
            "\"ES256\"",
            "[\"HS256\"]",
            "[\"none\"]",
            "\"session\"",
            "4294967296",
            "65536",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        text(0, 12).prop_map(|s| format!("{s:?}")),
        "[ -~]{0,12}",
    ]
}

/// One edit of the file's lines.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize),
    Duplicate(usize),
    Value(usize, String),
    Insert(usize, String),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let line = any::<usize>();
    let key = prop::sample::select(vec![
        "prefix",
        "upstream",
        "auth",
        "name",
        "methods",
        "strip_prefix",
        "hosts",
        "user_header",
        "strip_headers",
        "max_body_bytes",
        "timeout",
        "allow_clients",
        "issuer",
        "algorithms",
        "[[routes]]",
        "[[issuers]]",
        "[forward_auth]",
        "[login]",
        "[[login.providers]]",
        "[x]",
    ]);
    prop_oneof![
        1 => line.prop_map(Edit::Delete),
        1 => line.prop_map(Edit::Duplicate),
        4 => (line, toml_value()).prop_map(|(at, v)| Edit::Value(at, v)),
        2 => (line, key, toml_value()).prop_map(|(at, k, v)| {
            Edit::Insert(at, if k.starts_with('[') { k.to_owned() } else { format!("{k} = {v}") })
        }),
        1 => line.prop_map(Edit::Truncate),
    ]
}

fn apply(edits: &[Edit]) -> String {
    // Comments and blank lines are not worth editing.
    let mut lines: Vec<String> = SHIPPED
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    for edit in edits {
        let len = lines.len().max(1);
        match edit {
            Edit::Delete(at) if !lines.is_empty() => {
                lines.remove(at % len);
            }
            Edit::Duplicate(at) if !lines.is_empty() => {
                let line = lines[at % len].clone();
                lines.insert(at % len, line);
            }
            Edit::Value(at, value) if !lines.is_empty() => {
                let line = &mut lines[at % len];
                if let Some((key, _)) = line.split_once('=') {
                    *line = format!("{key}= {value}");
                }
            }
            Edit::Insert(at, line) => lines.insert(at % (lines.len() + 1), line.clone()),
            Edit::Truncate(at) => {
                let text = lines.join("\n");
                let mut cut = at % (text.len() + 1);
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                lines = text[..cut].lines().map(str::to_owned).collect();
            }
            _ => {}
        }
    }
    lines.join("\n")
}

#[test]
fn the_shipped_config_loads_unedited() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, apply(&[])).unwrap();
    if let Err(error) = authgate::config::load(&path) {
        panic!("{error}");
    }
}

proptest! {
    #![proptest_config(cases(2000))]

    /// Any edits of the shipped config (keys deleted, duplicated, inserted, values of any type,
    /// the file cut anywhere): `load` answers Ok or an error, never panics.
    #[test]
    fn config_loading_is_total(edits in prop::collection::vec(edit(), 1..5)) {
        thread_local! {
            static DIR: tempfile::TempDir = tempfile::tempdir().unwrap();
        }
        let path = DIR.with(|dir| dir.path().join("gateway.toml"));
        std::fs::write(&path, apply(&edits)).unwrap();
        let _ = authgate::config::load(&path);
    }

    /// Any text as a duration or a size: an answer, never a panic (overflow included).
    #[test]
    fn units_are_total(input in prop_oneof!["[0-9]{0,25} ?(ms|s|m|h|d|B|KB|kB|KiB|MB|MiB|GB|GiB|x)?", text(0, 10)]) {
        let _ = authgate::config::parse_duration(&input);
        let _ = authgate::config::parse_size(&input);
    }
}

// ---------------------------------------------------------------------------------------------
// The other readings of a path (`proxy::readings`) and the query/body rules (`proxy::rules`).

proptest! {
    #![proptest_config(cases(3000))]

    /// Any normalised path: its readings never panic, and each is a normal path other than
    /// the path itself.
    #[test]
    fn readings_are_normal_paths(raw in prop_oneof![raw_path(), any::<String>()]) {
        let Ok(normal) = normalize(&raw) else { return Ok(()) };
        let Ok(readings) = authgate::proxy::readings::read(&normal) else { return Ok(()) };
        for path in &readings.paths {
            prop_assert_ne!(path, &normal);
            prop_assert_eq!(normalize(path), Ok(Cow::Borrowed(path.as_str())), "{:?}", path);
        }
    }

    /// Any query or form body: reading `_method` and `access_token` never panics, and a query
    /// without a parameter holds none of it.
    #[test]
    fn query_parameters_are_read_totally(
        pairs in prop::collection::vec(
            (prop_oneof![
                prop::sample::select(vec!["_method", "access_token", " method", ".method", "_method[]", "%5Fmethod", "access.token", "a"]).prop_map(str::to_owned),
                "[^&=]{0,8}",
            ], "[^&]{0,8}"),
            0..6,
        ),
        separator in prop::sample::select(vec!["&", ";", "&&"]),
    ) {
        let query: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let query = query.join(separator);
        let _ = authgate::proxy::rules::form_method(query.as_bytes());
        for wanted in ["_method", "access_token"] {
            let _ = authgate::proxy::rules::param(&query, wanted);
            if let Some(rest) = authgate::proxy::rules::without_param(&query, wanted) {
                prop_assert_eq!(authgate::proxy::rules::param(&rest, wanted), None, "{:?}", rest);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The PROXY protocol header (`server::proxy_protocol`).

/// A valid v1 line or v2 header, and the client address it carries.
fn proxy_header() -> impl Strategy<Value = (Vec<u8>, std::net::SocketAddr)> {
    use std::net::{IpAddr, SocketAddr};
    let v1 = (any::<IpAddr>(), any::<IpAddr>(), any::<u16>(), any::<u16>()).prop_filter_map(
        "one family",
        |(src, dst, sport, dport)| {
            let proto = match (src, dst) {
                (IpAddr::V4(_), IpAddr::V4(_)) => "TCP4",
                (IpAddr::V6(_), IpAddr::V6(_)) => "TCP6",
                _ => return None,
            };
            let line = format!("PROXY {proto} {src} {dst} {sport} {dport}\r\n");
            Some((line.into_bytes(), SocketAddr::new(src, sport)))
        },
    );
    let v2 = (
        any::<IpAddr>(),
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(ip, port, tlvs)| {
            let src = SocketAddr::new(ip, port);
            let mut header = authgate::server::proxy_protocol::V2_SIGNATURE.to_vec();
            let mut block = Vec::new();
            let family = match src.ip() {
                IpAddr::V4(ip) => {
                    block.extend_from_slice(&ip.octets());
                    block.extend_from_slice(&[10, 0, 0, 1]);
                    0x11
                }
                IpAddr::V6(ip) => {
                    block.extend_from_slice(&ip.octets());
                    block.extend_from_slice(&[0; 16]);
                    0x21
                }
            };
            block.extend_from_slice(&src.port().to_be_bytes());
            block.extend_from_slice(&443u16.to_be_bytes());
            block.extend_from_slice(&tlvs);
            header.extend_from_slice(&[0x21, family]);
            header.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
            header.extend_from_slice(&block);
            (header, src)
        });
    prop_oneof![v1, v2]
}

proptest! {
    #![proptest_config(cases(4000))]

    /// Any bytes: no panic, and a complete header is never longer than the bytes read.
    #[test]
    fn proxy_headers_parse_totally(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            (prop::sample::select(vec![&b"PROXY "[..], b"\r\n\r\n\0\r\nQUIT\n"]), prop::collection::vec(any::<u8>(), 0..120))
                .prop_map(|(prefix, rest)| [prefix, &rest[..]].concat()),
        ],
    ) {
        use authgate::server::proxy_protocol::{Parsed, parse};
        match parse(&bytes) {
            Ok(Parsed::Complete { len, .. }) => prop_assert!(len <= bytes.len()),
            Ok(Parsed::Incomplete { total }) => prop_assert!(total > bytes.len()),
            Err(_) => {}
        }
    }

    /// A valid header gives its client address and exact length whatever follows it; every
    /// strict prefix of it asks for more bytes, never more than the header has.
    #[test]
    fn proxy_headers_are_read_exactly(
        (header, source) in proxy_header(),
        after in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        use authgate::server::proxy_protocol::{Parsed, Source, parse};
        let whole = [&header[..], &after[..]].concat();
        let complete = Parsed::Complete { source: Source::Client(source), len: header.len() };
        prop_assert_eq!(parse(&whole), Ok(complete));
        for cut in 0..header.len() {
            match parse(&header[..cut]) {
                Ok(Parsed::Incomplete { total }) => {
                    prop_assert!(total > cut && total <= header.len(), "{} of {}: {}", cut, header.len(), total)
                }
                other => prop_assert!(false, "{} of {}: {:?}", cut, header.len(), other),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `scope` and `resource` parameters (`grant::scope`, `grant::resource`).

/// Scope tokens: the registered kinds, near misses, and any text.
fn scope_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "openid",
            "email",
            "profile",
            "api:read",
            "api:write",
            "OPENID",
            "openid\u{a0}"
        ])
        .prop_map(str::to_owned),
        text(0, 8),
    ];
    (
        prop::collection::vec(token, 0..5),
        prop::sample::select(vec![" ", "  ", "\t", "\n", "\u{3000}"]),
    )
        .prop_map(|(tokens, separator)| tokens.join(separator))
}

proptest! {
    #![proptest_config(cases(3000))]

    /// Any `scope` value: parsed into sorted, unique, non-empty tokens without whitespace; a
    /// grant lies within the registration (or the OpenID scopes for an unregistered client),
    /// and a refresh within what was granted and is still registered.
    #[test]
    fn scopes_stay_within_what_was_granted(
        requested in scope_text(),
        allowed in scope_text(),
        granted in scope_text(),
        ask in any::<bool>(),
    ) {
        use authgate::grant::scope;
        let requested = scope::parse(&requested);
        prop_assert!(requested.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(requested.iter().all(|s| !s.is_empty() && !s.contains(char::is_whitespace)));
        let (allowed, granted) = (scope::parse(&allowed), scope::parse(&granted));
        let asked = ask.then_some(requested.as_slice());
        let within = |s: &String, allowed: &[String]| {
            if allowed.is_empty() { scope::UNREGISTERED.contains(&s.as_str()) } else { allowed.contains(s) }
        };
        if let Ok(result) = scope::grant(asked, &allowed) {
            let fits = |s: &String| if ask { within(s, &allowed) } else { allowed.contains(s) };
            prop_assert!(result.iter().all(fits), "{:?}", result);
        }
        if let Ok(result) = scope::narrow(asked, &granted, &allowed) {
            prop_assert!(result.iter().all(|s| granted.contains(s) && within(s, &allowed)), "{:?}", result);
        }
    }

    /// Any `resource` values: a resource accepted is an absolute URI without a fragment,
    /// whitespace or control character.
    #[test]
    fn resources_are_absolute_uris(resources in prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec!["https://api.example/", "urn:x:y", "https://a#b", "/rel", "https:", "1x:y", "a b:c"]).prop_map(str::to_owned),
            text(0, 16),
        ],
        0..4,
    )) {
        if authgate::grant::resource::check_syntax(&resources).is_ok() {
            for resource in &resources {
                let (scheme, rest) = resource.split_once(':').unwrap_or_default();
                prop_assert!(!scheme.is_empty() && !rest.is_empty(), "{:?}", resource);
                prop_assert!(!resource.contains('#') && !resource.contains(char::is_whitespace), "{:?}", resource);
                prop_assert!(!resource.contains(char::is_control), "{:?}", resource);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Framing rules and the client address (`proxy::rules`, `proxy::headers`).

/// Names of framing fields in `-`/`_` spellings, `Host`, and ordinary names.
fn framing_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "transfer-encoding",
            "content-length",
            "keep-alive",
            "proxy-connection",
            "proxy-authorization",
            "proxy-authenticate",
            "http2-settings",
        ])
        .prop_flat_map(spelling),
        prop::sample::select(vec!["host", "x_custom", "accept", "te"]).prop_map(str::to_owned),
    ]
}

proptest! {
    #![proptest_config(cases(3000))]

    /// A request passes the framing checks exactly when it has one `Host` (or none where the
    /// version allows), no `_` spelling of a framing field, and only the chunked coding.
    #[test]
    fn framing_is_refused_exactly_when_ambiguous(
        fields in prop::collection::vec((framing_name(), prop_oneof![
            prop::sample::select(vec!["chunked", "CHUNKED", "gzip, chunked", "chunked, ", "identity", "gw.test"]).prop_map(str::to_owned),
            "[ -~]{0,8}",
        ]), 0..5),
        version in prop::sample::select(vec![hyper::Version::HTTP_10, hyper::Version::HTTP_11, hyper::Version::HTTP_2]),
        method in prop::sample::select(vec![hyper::Method::GET, hyper::Method::POST, hyper::Method::CONNECT]),
    ) {
        let mut headers = HeaderMap::new();
        for (name, value) in &fields {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                headers.append(name, value);
            }
        }
        let hosts = headers.get_all("host").iter().count();
        let host_ok = hosts <= 1 && (hosts == 1 || version != hyper::Version::HTTP_11 || method == hyper::Method::CONNECT);
        let underscore = headers.keys().any(|n| {
            let n = n.as_str();
            n.contains('_') && ["transfer-encoding", "content-length", "keep-alive", "proxy-connection",
                "proxy-authorization", "proxy-authenticate", "http2-settings"].contains(&n.replace('_', "-").as_str())
        });
        let codings_ok = headers.get_all("transfer-encoding").iter().all(|v| {
            v.to_str().is_ok_and(|v| v.split(',').map(str::trim).all(|c| c.is_empty() || c.eq_ignore_ascii_case("chunked")))
        });
        let passed = authgate::proxy::rules::check_framing(version, &method, &headers).is_ok();
        prop_assert_eq!(passed, host_ok && !underscore && codings_ok, "{:?}", headers);
    }

    /// `X-Forwarded-For` is believed from trusted proxies only: from anyone else the client
    /// is the socket peer whatever the headers say; behind a trusted proxy it is the peer or
    /// an address of the chain with only trusted, readable entries to its right.
    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only(
        peer in prop::sample::select(vec!["10.0.0.2", "192.168.7.7", "::1", "203.0.113.5", "2001:db8::5"]),
        chains in prop::collection::vec(
            prop::collection::vec(prop::sample::select(vec![
                "10.1.2.3", "192.168.1.1", "203.0.113.9", "198.51.100.7", "::1", "2001:db8::1",
                "unknown", "", " 10.0.0.1 ", "1.2.3.4:80", "[::1]",
            ]), 0..4),
            0..3,
        ),
        separator in prop::sample::select(vec![",", ", ", " , "]),
    ) {
        use std::net::IpAddr;
        let trusted: Vec<ipnet::IpNet> = ["10.0.0.0/8", "192.168.0.0/16", "::1/128"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
        let peer: IpAddr = peer.parse().unwrap();
        let mut headers = HeaderMap::new();
        for chain in &chains {
            headers.append("x-forwarded-for", HeaderValue::from_str(&chain.join(separator)).unwrap());
        }
        let client = authgate::proxy::headers::client_addr(peer, &headers, &trusted);
        if !is_trusted(&peer) {
            prop_assert_eq!(client.ip, peer);
            prop_assert!(!client.via_trusted_proxy);
            return Ok(());
        }
        prop_assert!(client.via_trusted_proxy);
        let entries: Vec<&str> = chains.iter().flat_map(|c| c.iter()).flat_map(|e| e.split(',')).map(str::trim).collect();
        if client.ip != peer {
            let at = entries.iter().rposition(|e| e.parse::<IpAddr>().ok() == Some(client.ip));
            let at = at.ok_or_else(|| TestCaseError::fail("an address not in the chain"))?;
            for right in &entries[at + 1..] {
                let right: IpAddr = right.parse().map_err(|_| TestCaseError::fail("read past an unreadable entry"))?;
                prop_assert!(is_trusted(&right));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The wire check (issue 27): whatever a client sends, in whatever pieces it arrives
// ---------------------------------------------------------------------------------------------

/// A valid request: a GET, a POST with a Content-Length body, or a chunked POST (random
/// sizes, extensions and a trailer), with their bytes as the client sends them.
fn valid_request() -> impl Strategy<Value = Vec<u8>> {
    let body = proptest::collection::vec(any::<u8>(), 0..40);
    let chunks = proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..20), 0..4);
    prop_oneof![
        "[a-z0-9/._~-]{0,30}".prop_map(|p| format!(
            "GET /{p} HTTP/1.1\r\nHost: h.example:8080\r\nAccept: */*\r\n\r\n"
        )
        .into_bytes()),
        body.prop_map(|b| {
            let mut r = format!(
                "POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
                b.len()
            )
            .into_bytes();
            r.extend_from_slice(&b);
            r
        }),
        (chunks, any::<bool>(), any::<bool>()).prop_map(|(chunks, ext, trailer)| {
            let mut r =
                b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for c in &chunks {
                r.extend_from_slice(
                    format!("{:X}{}\r\n", c.len(), if ext { ";n=\"v\"" } else { "" }).as_bytes(),
                );
                r.extend_from_slice(c);
                r.extend_from_slice(b"\r\n");
            }
            r.extend_from_slice(if trailer {
                b"0\r\nX-T: 1\r\n\r\n"
            } else {
                b"0\r\n\r\n"
            });
            r
        }),
    ]
}

/// `bytes` fed in the pieces `cuts` makes: what is given, and the refusal if one came.
fn feed_in_pieces(
    bytes: &[u8],
    cuts: &[usize],
) -> (Vec<u8>, Option<authgate::http::wire::Refusal>, u64) {
    let mut wire = authgate::http::wire::Wire::new(8 * 1024);
    let mut out = Vec::new();
    let mut at = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    points.push(bytes.len());
    for end in points {
        if end < at {
            continue;
        }
        match wire.feed(&bytes[at..end], &mut out) {
            Ok(taken) => assert_eq!(
                taken,
                end - at,
                "no switching request here, so all is taken"
            ),
            Err(refusal) => return (out, Some(refusal), wire.requests()),
        }
        at = end;
    }
    (out, None, wire.requests())
}

proptest! {
    #![proptest_config(cases(400))]

    /// Valid pipelined requests pass through unchanged, however they are cut into reads.
    #[test]
    fn valid_requests_pass_whole(requests in proptest::collection::vec(valid_request(), 1..4), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
        let bytes: Vec<u8> = requests.concat();
        let (out, refusal, n) = feed_in_pieces(&bytes, &cuts);
        prop_assert_eq!(refusal, None);
        prop_assert_eq!(out, bytes);
        prop_assert_eq!(n, requests.len() as u64);
    }

    /// Any bytes, a valid request with one byte changed, or one cut short: no panic, and the
    /// verdict and what is given do not depend on how the bytes arrive.
    #[test]
    fn the_verdict_does_not_depend_on_the_reads(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            (valid_request(), any::<proptest::sample::Index>(), any::<u8>()).prop_map(|(mut r, i, b)| {
                let i = i.index(r.len());
                r[i] = b;
                r
            }),
            (valid_request(), any::<proptest::sample::Index>()).prop_map(|(r, i)| r[..i.index(r.len())].to_vec()),
        ],
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let whole = feed_in_pieces(&bytes, &[]);
        let pieces = feed_in_pieces(&bytes, &cuts);
        prop_assert_eq!(&whole, &pieces);
        // What is given is a prefix of what was sent, but for served-as-1.1 versions and the
        // empty lines dropped before a request line.
        prop_assert!(whole.0.len() <= bytes.len());
    }
}
