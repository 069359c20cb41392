//! Client authentication (RFC 6749 §2.3) as a typed input: the dialect says where the client
//! put its credentials, the engine decides. Secret guessing is throttled like password guessing.

use std::net::IpAddr;

use super::throttle::shared_keys;
use super::{Engine, GrantError};
use crate::store::{Client, GrantType, StoreError};

/// Where the client's credentials came from. Secrets are redacted from `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientCredentials {
    /// Nothing identified a client.
    Missing,
    /// `client_secret_basic`: HTTP Basic with id and secret.
    Basic {
        /// The client id.
        id: String,
        /// The client secret.
        secret: String,
    },
    /// `client_secret_post`: `client_id` (and, for a confidential client, `client_secret`) in
    /// the body; a public client sends only its id.
    Post {
        /// The client id.
        id: String,
        /// The client secret; `None` for a public client.
        secret: Option<String>,
    },
    /// Both at once: refused with `invalid_request` (RFC 6749 §2.3: one method per request).
    Both,
    /// A secret shipped inside an app (the `mobile` dialect): it authenticates a confidential
    /// client, but a *public* client is identified by the id alone and the secret, which
    /// anyone can extract from the app, proves nothing and is ignored.
    Shipped {
        /// The client id.
        id: String,
        /// The shipped secret, if the app sends one.
        secret: Option<String>,
    },
    /// The `app` dialect's `app_id` header: identifies a *public* client by its alias; a
    /// confidential client must authenticate with its secret instead.
    AppId(String),
}

impl ClientCredentials {
    /// Builds the value from what a dialect found: an `Authorization: Basic` pair and the
    /// body's `client_id`/`client_secret`.
    pub fn from_parts(
        basic: Option<(String, String)>,
        post_id: Option<String>,
        post_secret: Option<String>,
    ) -> Self {
        match (basic, post_id, post_secret) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => ClientCredentials::Both,
            (Some((id, secret)), None, None) => ClientCredentials::Basic { id, secret },
            (None, Some(id), secret) => ClientCredentials::Post { id, secret },
            (None, None, _) => ClientCredentials::Missing,
        }
    }

    /// The client id it names, if any.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            ClientCredentials::Basic { id, .. }
            | ClientCredentials::Post { id, .. }
            | ClientCredentials::Shipped { id, .. } => Some(id),
            _ => None,
        }
    }
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientCredentials::Missing => f.write_str("Missing"),
            ClientCredentials::Both => f.write_str("Both"),
            ClientCredentials::Basic { id, .. } => write!(f, "Basic({id:?}, <redacted>)"),
            ClientCredentials::Post { id, secret } => {
                let secret = secret.as_ref().map(|_| "<redacted>");
                write!(f, "Post({id:?}, {secret:?})")
            }
            ClientCredentials::Shipped { id, secret } => {
                let secret = secret.as_ref().map(|_| "<redacted>");
                write!(f, "Shipped({id:?}, {secret:?})")
            }
            ClientCredentials::AppId(app) => write!(f, "AppId({app:?})"),
        }
    }
}

impl Engine {
    /// The authenticated client, or `invalid_client`/`invalid_request`/`TooManyAttempts`.
    pub async fn authenticate(
        &self,
        credentials: &ClientCredentials,
        source: IpAddr,
    ) -> Result<Client, GrantError> {
        let (id, secret) = match credentials {
            ClientCredentials::Both => {
                return Err(GrantError::request(
                    "client credentials were sent both in the Authorization header and in the body",
                ));
            }
            ClientCredentials::Missing => return Err(GrantError::InvalidClient { source: None }),
            ClientCredentials::AppId(app_id) => return self.public_by_app_id(app_id).await,
            ClientCredentials::Basic { id, secret } => (id.as_str(), Some(secret.as_str())),
            ClientCredentials::Post { id, secret } => (id.as_str(), secret.as_deref()),
            ClientCredentials::Shipped { id, secret } => {
                match self.store.verify_client(id, None).await {
                    Ok(public) => return Ok(public),
                    Err(StoreError::BadClientCredentials) => (id.as_str(), secret.as_deref()),
                    Err(other) => {
                        return Err(GrantError::internal("authenticating the client", other));
                    }
                }
            }
        };
        let key = format!("client:{id}");
        let (checked, verified) = if self.shared_backoff() {
            // The client and the back-off counts in one query; the secret is checked only
            // once the verdict allows it, against the row as it is after any slow-down.
            let keys = shared_keys(&key, source);
            let (stored, counts) = self
                .store
                .stored_client_and_failures(id, &keys)
                .await
                .map_err(|e| GrantError::internal("authenticating the client", e))?;
            let checked = self.backoff_check_counts(counts).await?;
            let stored = if checked.delayed {
                self.store
                    .stored_client(id)
                    .await
                    .map_err(|e| GrantError::internal("authenticating the client", e))?
            } else {
                stored
            };
            (checked, stored.verify(secret))
        } else {
            let checked = self.backoff_check(&key, source).await?;
            (checked, self.store.verify_client(id, secret).await)
        };
        match verified {
            Ok(client) => {
                self.backoff_succeeded(&key, source, checked).await;
                Ok(client)
            }
            Err(StoreError::BadClientCredentials) => {
                self.backoff_failed(&key, source).await;
                Err(GrantError::InvalidClient {
                    source: Some(StoreError::BadClientCredentials),
                })
            }
            Err(other) => Err(GrantError::internal("authenticating the client", other)),
        }
    }

    async fn public_by_app_id(&self, app_id: &str) -> Result<Client, GrantError> {
        match self.store.client_by_app_id(app_id).await {
            Ok(client) if client.public => Ok(client),
            Ok(_) => Err(GrantError::InvalidClient { source: None }),
            Err(error @ StoreError::NotFound { .. }) => Err(GrantError::InvalidClient {
                source: Some(error),
            }),
            Err(other) => Err(GrantError::internal("looking up the app id", other)),
        }
    }
}

/// `unauthorized_client` unless `client` is registered for `grant`.
pub(super) fn require(client: &Client, grant: GrantType) -> Result<(), GrantError> {
    if client.allows(grant) {
        Ok(())
    } else {
        Err(GrantError::UnauthorizedClient {
            grant: grant.as_str(),
        })
    }
}
