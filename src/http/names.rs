//! Header-name spellings compared as upstream stacks read them: `_` and `-` equal, one `x-`
//! prefix optional. `authz` reads identity headers with [`same_identity_name`]; the proxy's
//! header hygiene (`proxy/headers.rs`) folds framing names with [`folded_eq`].

use hyper::header::HeaderName;

/// `a` and `b` are the same identity header in today's exact sense: case-insensitive, `_`
/// and `-` equal, one `x-` prefix optional. These spellings are read as an impersonation
/// request (`authz::Requested`); the looser ones of `proxy::headers::IdentityNames` are only
/// stripped.
pub fn same_identity_name(a: &HeaderName, b: &HeaderName) -> bool {
    folded_eq(
        strip_x_prefix(a.as_str().as_bytes()),
        strip_x_prefix(b.as_str().as_bytes()),
    )
}

/// Byte equality with `_` and `-` equal (header names are lower case already).
pub fn folded_eq(a: &[u8], b: &[u8]) -> bool {
    let fold = |c: u8| if c == b'_' { b'-' } else { c };
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| fold(x) == fold(y))
}

fn strip_x_prefix(name: &[u8]) -> &[u8] {
    match name {
        [b'x', b'-' | b'_', rest @ ..] if !rest.is_empty() => rest,
        _ => name,
    }
}
