//! Random values and their digests: refresh tokens, codes, client secrets and family ids are
//! 256-bit random strings handed out once; the store keeps only their SHA-256 digest.
//!
//! Tokens and codes are looked up *by* digest (an index lookup on the hash of a 256-bit random
//! value leaks nothing usable); client secrets are compared to the stored digest in constant
//! time.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use super::StoreError;

/// `n` bytes from the operating system's CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StoreError::Crypto("the system random generator failed"))?;
    Ok(bytes)
}

/// A fresh 256-bit random token: 43 characters of unpadded base64url.
pub(crate) fn new_token() -> Result<String, StoreError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// A random identifier (128 bits, 22 characters): refresh-token families.
pub(crate) fn new_id() -> Result<String, StoreError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<16>()?))
}

/// SHA-256 of a presented token, secret or code: what the store keeps and looks up.
pub(crate) fn digest_of(value: &str) -> Vec<u8> {
    digest(&SHA256, value.as_bytes()).as_ref().to_vec()
}

/// Does `presented` hash to `stored`? Constant time in the digest bytes.
pub(crate) fn digest_matches(presented: &str, stored: &[u8]) -> bool {
    digest_of(presented).ct_eq(stored).into()
}

pub(crate) fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_characters_and_distinct() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(new_id().unwrap().len(), 22);
    }

    #[test]
    fn digests_compare_exactly() {
        let stored = digest_of("s3cret");
        assert_eq!(stored.len(), 32);
        assert!(digest_matches("s3cret", &stored));
        assert!(!digest_matches("s3cret ", &stored));
        assert!(!digest_matches("s3cret", &stored[..31]));
    }
}
