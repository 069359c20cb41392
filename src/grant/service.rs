//! The `client_credentials` grant (RFC 6749 §4.4): a confidential client's own token. `sub` is
//! `client:<id>` (never an integer, so never a user id), no `gid`, no roles, no refresh token.

use super::client_auth::require;
use super::{Engine, Grant, GrantError, IssueOptions, Subject, scope};
use crate::store::{Client, GrantType};

impl Engine {
    pub(super) async fn client_credentials(
        &self,
        client: &Client,
        requested: Option<&[String]>,
        resources: Vec<String>,
        options: &IssueOptions,
    ) -> Result<Grant, GrantError> {
        require(client, GrantType::ClientCredentials)?;
        // The store refuses to register such a client; a public client has no secret to
        // prove it is who it says, so never.
        if client.public {
            return Err(GrantError::UnauthorizedClient {
                grant: GrantType::ClientCredentials.as_str(),
            });
        }
        let scope = scope::grant(requested, &client.scopes)?;
        let mut decision = self.decision(client, Subject::Client, scope, options);
        decision.resources = resources;
        self.sign(decision).await
    }
}
