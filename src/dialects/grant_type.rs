//! `grant_type` and its parameters → the engine's [`GrantRequest`], the same in every dialect:
//! which parameters each grant needs and in what order a missing one is reported. A dialect
//! says which grants its endpoint takes, how its password login names the user, and how it
//! words a missing parameter; the token exchange's parameters are the `oauth2` dialect's own.

use super::form::{Form, MissingParameter};
use crate::grant::{GrantError, GrantRequest, Login};

/// How a dialect's endpoint reads a grant.
#[derive(Clone, Copy)]
pub struct GrantSyntax {
    /// The grant types it serves (RFC 6749 names); any other is `unsupported_grant_type`.
    pub accepted: &'static [&'static str],
    /// What the password grant's `username` names (any login name, a phone number, …).
    pub login: fn(String) -> Login,
    /// The dialect's wording of a missing parameter.
    pub missing: fn(MissingParameter) -> GrantError,
}

impl GrantSyntax {
    /// The grant `grant_type` asks for, its parameters taken out of `form` (so secrets do not
    /// linger in it).
    pub fn parse(&self, grant_type: &str, form: &mut Form) -> Result<GrantRequest, GrantError> {
        if !self.accepted.contains(&grant_type) {
            return Err(unsupported(grant_type));
        }
        let mut required = |name| form.required(name).map_err(self.missing);
        let grant = match grant_type {
            "password" => GrantRequest::Password {
                login: (self.login)(required("username")?),
                password: required("password")?,
            },
            "refresh_token" => GrantRequest::RefreshToken {
                refresh_token: required("refresh_token")?,
            },
            "authorization_code" => GrantRequest::AuthorizationCode {
                code: required("code")?,
                redirect_uri: form.take("redirect_uri"),
                code_verifier: form.take("code_verifier"),
            },
            "client_credentials" => GrantRequest::ClientCredentials,
            other => return Err(unsupported(other)),
        };
        Ok(grant)
    }
}

/// `unsupported_grant_type` for `grant_type`.
pub fn unsupported(grant_type: &str) -> GrantError {
    GrantError::UnsupportedGrantType {
        grant: grant_type.to_owned(),
    }
}

/// The usual wording of a missing parameter (the `mobile` and `app` dialects').
pub fn missing(missing: MissingParameter) -> GrantError {
    GrantError::request(missing.to_string())
}
