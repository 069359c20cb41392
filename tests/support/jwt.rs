//! Reading a JWT without verifying it (the gateway did that): one segment's JSON.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// Segment `index` of the compact JWT `token` (0 the header, 1 the claims), base64url-decoded
/// and parsed as JSON. Panics if there is no such segment or it is not base64url JSON.
pub fn jwt_part(token: &str, index: usize) -> Value {
    let text = token
        .split('.')
        .nth(index)
        .unwrap_or_else(|| panic!("no segment {index} in the JWT {token:?}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_else(|e| panic!("segment {index} of {token:?} is not base64url: {e}"));
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("segment {index} of {token:?} is not JSON: {e}"))
}

/// The JOSE header of `token`.
pub fn jwt_header(token: &str) -> Value {
    jwt_part(token, 0)
}

/// The claims of `token`.
pub fn jwt_claims(token: &str) -> Value {
    jwt_part(token, 1)
}
