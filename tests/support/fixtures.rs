//! Users and clients for a test's store: the fields the tests vary, the rest defaulted.

use std::time::Duration;

use authgate::keyring::Keyring;
use authgate::store::{GrantType, KeyAlg, NewClient, NewUser, Store};
use authgate::tokens::{self, AccessTokenSpec};

/// User `id` named `account` in group `group_id` with `roles`; no phone, email or profile.
pub fn new_user(id: i64, account: &str, group_id: i64, roles: &[&str]) -> NewUser {
    NewUser {
        id: Some(id),
        account: account.into(),
        group_id,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ..NewUser::default()
    }
}

/// Adds `users` in order, each with `password` (or none), as of `now`.
pub async fn add_users(
    store: &Store,
    users: impl IntoIterator<Item = NewUser>,
    password: Option<&str>,
    now: i64,
) {
    for user in users {
        store.add_user(user, password, now).await.unwrap();
    }
}

/// Client `id`, public or confidential, allowed `grants`; everything else defaulted.
pub fn new_client(id: &str, public: bool, grants: Vec<GrantType>) -> NewClient {
    NewClient {
        id: id.into(),
        public,
        grants,
        ..NewClient::default()
    }
}

/// [`new_client`] as the OAuth tests register one: `redirect` its only redirect URI, the
/// scopes `read` and `write`.
pub fn oauth_client(id: &str, public: bool, grants: Vec<GrantType>, redirect: &str) -> NewClient {
    NewClient {
        redirect_uris: vec![redirect.into()],
        scopes: vec!["read".into(), "write".into()],
        ..new_client(id, public, grants)
    }
}

/// Adds `clients` in order as of `now`: the confidential ones with `secret`, the public ones
/// without a secret.
pub async fn add_clients(
    store: &Store,
    clients: impl IntoIterator<Item = NewClient>,
    secret: &str,
    now: i64,
) {
    for client in clients {
        let secret = (!client.public).then_some(secret);
        store.add_client(client, secret, now).await.unwrap();
    }
}

/// An ES256 access token of `issuer` for `user` in `group` with `roles` (client `test-app`,
/// valid 10 minutes), signed with the active key of `keyring`.
pub fn access_token(
    keyring: &Keyring,
    issuer: &str,
    user: i64,
    group: i64,
    roles: &[&str],
) -> String {
    let key = keyring.signing_key(KeyAlg::Es256).unwrap();
    let spec = AccessTokenSpec {
        user_id: user.to_string(),
        group_id: Some(group),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        client_id: Some("test-app".into()),
        ttl: Duration::from_secs(600),
        ..AccessTokenSpec::default()
    };
    let now = jsonwebtoken::get_current_timestamp();
    tokens::issue(issuer, &key, &spec, now).unwrap().token
}
