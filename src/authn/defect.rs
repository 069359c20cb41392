//! What exactly is wrong with a refused token or request, as closed sets: [`TokenDefect`]
//! (RFC 6750 `invalid_token`) and [`RequestDefect`] (`invalid_request`). Each variant's
//! `Display` is the `error_description` clients receive — recorded byte-for-byte by the golden
//! tests, so a message changes only together with them — and [`TokenDefect::failure`] is its
//! `reason` label on the auth-failures metric, decided here by variant and never by message
//! text.

use super::AuthFailure;

/// Why a bearer token is refused (401 `invalid_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenDefect {
    /// Not three base64url parts with JSON header and claims.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// `alg` is not on any trusted issuer's allow-list (checked before the payload is read).
    #[error("the token's algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// `iss` names no configured issuer, or does not match the validated one.
    #[error("the token's issuer is not trusted")]
    UntrustedIssuer,
    /// `typ` is not one the issuer's policy accepts (e.g. an identity assertion).
    #[error("the token is not an access token")]
    NotAnAccessToken,
    /// RFC 7515 §4.1.11: `crit` names extensions this gateway does not implement.
    #[error("the token has critical header parameters this gateway does not support")]
    UnsupportedCritical,
    /// The header has no `kid`, so no key can be chosen.
    #[error("the token names no key (kid)")]
    NoKeyId,
    /// The cached token's key has left the key set (retired or revoked since).
    #[error("the token's signing key is unknown")]
    KeyGone,
    /// The key's bound algorithm differs from the header's `alg`.
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    /// `exp` is in the past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `aud` names none of the issuer's configured audiences.
    #[error("the token is not meant for this audience")]
    WrongAudience,
    /// The signature does not verify with the named key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// A claim the policy requires (`exp`, `iss`, `aud`) is absent.
    #[error("the token lacks a required claim")]
    MissingClaim,
    /// `exp`, `nbf` or `iat` is not numeric.
    #[error("a time claim of the token is not a number")]
    TimeClaimNotNumeric,
    /// Any other verification failure the JWT library reports.
    #[error("the token is invalid")]
    Invalid,
    /// The user claim is absent or empty.
    #[error("the token names no user")]
    NoUser,
    /// An id claim could not become one identity header value (a list, padding, too long).
    #[error("the token's identity claims cannot be forwarded as they are")]
    UnforwardableIdentity,
    /// An opaque token the store does not know, or whose lifetime is over.
    #[error("the token is unknown or expired")]
    UnknownOrExpired,
    /// The token, its user or its family is on the revocation list.
    #[error("the token has been revoked")]
    Revoked,
    /// The revocation state cannot be read (a poisoned lock): refused, failing closed.
    #[error("the token cannot be checked right now")]
    Uncheckable,
    /// The admin named in `act` has lost the admin role since the token was issued.
    #[error("the admin acting for this user is no longer an admin")]
    ActorNoLongerAdmin,
    /// The admin named in `act` has been signed out everywhere since the token was issued.
    #[error("the admin acting for this user has been signed out")]
    ActorSignedOut,
}

impl TokenDefect {
    /// The `reason` label this refusal is counted under.
    pub fn failure(self) -> AuthFailure {
        match self {
            TokenDefect::Expired => AuthFailure::Expired,
            TokenDefect::BadSignature => AuthFailure::BadSignature,
            TokenDefect::Revoked => AuthFailure::Revoked,
            TokenDefect::KeyGone | TokenDefect::NoKeyId => AuthFailure::UnknownKey,
            TokenDefect::Malformed
            | TokenDefect::AlgorithmNotAllowed
            | TokenDefect::UntrustedIssuer
            | TokenDefect::NotAnAccessToken
            | TokenDefect::UnsupportedCritical
            | TokenDefect::AlgorithmMismatch
            | TokenDefect::NotYetValid
            | TokenDefect::WrongAudience
            | TokenDefect::MissingClaim
            | TokenDefect::TimeClaimNotNumeric
            | TokenDefect::Invalid
            | TokenDefect::NoUser
            | TokenDefect::UnforwardableIdentity
            | TokenDefect::UnknownOrExpired
            | TokenDefect::Uncheckable
            | TokenDefect::ActorNoLongerAdmin
            | TokenDefect::ActorSignedOut => AuthFailure::Invalid,
        }
    }

    /// What the JWT library's verdict means for the client.
    pub(super) fn from_jwt(error: &jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match error.kind() {
            ErrorKind::ExpiredSignature => TokenDefect::Expired,
            ErrorKind::ImmatureSignature => TokenDefect::NotYetValid,
            ErrorKind::InvalidIssuer => TokenDefect::UntrustedIssuer,
            ErrorKind::InvalidAudience => TokenDefect::WrongAudience,
            ErrorKind::InvalidSignature => TokenDefect::BadSignature,
            ErrorKind::MissingRequiredClaim(_) => TokenDefect::MissingClaim,
            ErrorKind::InvalidClaimFormat(_) => TokenDefect::TimeClaimNotNumeric,
            ErrorKind::InvalidAlgorithm => TokenDefect::AlgorithmNotAllowed,
            _ => TokenDefect::Invalid,
        }
    }
}

/// Why the request's credentials cannot even be read (400 `invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestDefect {
    /// RFC 6750 §2: a token in two places (two headers, or a header and the query).
    #[error("the request carries more than one access token")]
    TwoTokens,
    /// `Authorization` is not visible ASCII, or its bearer token is empty or not token68.
    #[error("the Authorization header is malformed")]
    MalformedAuthorization,
    /// A configured token header (e.g. `access-token`) is not visible ASCII.
    #[error("the access token header is malformed")]
    MalformedTokenHeader,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden tests record these texts inside whole answers; this table says which
    /// variant owns which text, so a reworded message fails here by name.
    #[test]
    fn messages_are_the_ones_clients_know() {
        let cases = [
            (
                TokenDefect::Expired,
                "the token has expired",
                AuthFailure::Expired,
            ),
            (
                TokenDefect::BadSignature,
                "the token's signature is invalid",
                AuthFailure::BadSignature,
            ),
            (
                TokenDefect::Revoked,
                "the token has been revoked",
                AuthFailure::Revoked,
            ),
            (
                TokenDefect::KeyGone,
                "the token's signing key is unknown",
                AuthFailure::UnknownKey,
            ),
            (
                TokenDefect::NoKeyId,
                "the token names no key (kid)",
                AuthFailure::UnknownKey,
            ),
            (
                TokenDefect::UnknownOrExpired,
                "the token is unknown or expired",
                AuthFailure::Invalid,
            ),
            (
                TokenDefect::ActorSignedOut,
                "the admin acting for this user has been signed out",
                AuthFailure::Invalid,
            ),
        ];
        for (defect, message, failure) in cases {
            assert_eq!(defect.to_string(), message);
            assert_eq!(defect.failure(), failure, "{message}");
        }
        assert_eq!(
            RequestDefect::TwoTokens.to_string(),
            "the request carries more than one access token"
        );
    }
}
