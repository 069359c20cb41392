//! RFC 8693 token exchange's parameters (admins acting as a user): `subject_token` is the
//! admin's own access token, `requested_subject` the user to act as; `actor_token` is refused.

use super::required;
use crate::dialects::form::Form;
use crate::grant::{GrantError, GrantRequest};

/// RFC 8693 §3: an access token, the only kind taken and issued.
pub(super) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Our access tokens are JWTs, so this type names them too.
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The exchange's [`GrantRequest`], its parameters taken out of `form`.
pub(super) fn exchange_request(form: &mut Form) -> Result<GrantRequest, GrantError> {
    if form.get("actor_token").is_some() {
        return Err(GrantError::request(
            "actor_token is not supported: the subject_token is the admin's own token",
        ));
    }
    let token_type = required(form, "subject_token_type")?;
    if token_type != ACCESS_TOKEN_TYPE && token_type != JWT_TOKEN_TYPE {
        return Err(GrantError::request(
            "subject_token_type must be urn:ietf:params:oauth:token-type:access_token",
        ));
    }
    if let Some(requested) = form.get("requested_token_type")
        && requested != ACCESS_TOKEN_TYPE
        && requested != JWT_TOKEN_TYPE
    {
        return Err(GrantError::request(
            "only access tokens can be requested (requested_token_type)",
        ));
    }
    let subject_token = required(form, "subject_token")?;
    let user_id = required(form, "requested_subject")?
        .parse::<i64>()
        .map_err(|_| GrantError::request("requested_subject must be a numeric user id"))?;
    let group_id = match form.get("group_id") {
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| GrantError::request("group_id must be a number"))?,
        ),
        None => None,
    };
    Ok(GrantRequest::TokenExchange {
        subject_token,
        user_id: Some(user_id),
        group_id,
    })
}
