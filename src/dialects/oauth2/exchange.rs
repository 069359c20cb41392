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

/// Property tests (issue 26): the token exchange's parameters, any of them.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    use super::*;

    proptest! {
        #![proptest_config(Config { cases: 4000, failure_persistence: None, ..Config::default() })]

        /// Any parameters: no panic, and an exchange is for the user `requested_subject` names,
        /// with the admin's non-empty token.
        #[test]
        fn exchange_requests_are_total(
            pairs in prop::collection::vec((
                prop::sample::select(vec![
                    "subject_token", "subject_token_type", "requested_token_type",
                    "requested_subject", "group_id", "actor_token",
                ]),
                prop_oneof![
                    prop::sample::select(vec![ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE]).prop_map(str::to_owned),
                    "[ +0-9a-z-]{0,6}",
                ],
            ), 0..8),
        ) {
            let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
            let Ok(mut form) = Form::parse(body.as_bytes()) else { return Ok(()) };
            let said = form.get("requested_subject").and_then(|s| s.parse::<i64>().ok());
            if let Ok(GrantRequest::TokenExchange { subject_token, user_id, .. }) = exchange_request(&mut form) {
                prop_assert!(!subject_token.is_empty());
                prop_assert_eq!(user_id, said);
            }
        }
    }
}
