//! What the `app` dialect hands out besides the access token, all bound to the login session
//! (the access token's `jti`) and expiring with it:
//!
//! - `store_token`: a JWT of type [`STORE_TOKEN_TYPE`] for the storage audience; the proxy
//!   refuses it as an access token by its `typ`.
//! - `access_key_secret`: base64url(HMAC-SHA256(storage secret, session id)), unpadded. The
//!   storage service holds the same secret and recomputes it from the `store_token`'s `sid`,
//!   so the gateway stores no per-session secret at all.
//! - `push_token`: a JWT of type [`PUSH_TOKEN_TYPE`] for the push audience, bound to the
//!   `device_guid` the client sent (`""` without one).
//! - `public_key`: the PEM public key that verifies `token`.

use std::sync::Arc;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::config::{AppConfig, StoreBackend, StoreConfig};
use crate::grant::Grant;
use crate::keyring::{Keyring, KeyringError};
use crate::store::{KeyAlg, StoreError, shared_secret};
use crate::tokens::{
    PUSH_TOKEN_TYPE, STORE_TOKEN_TYPE, SessionToken, SignError, issue_session_token,
};

/// Why a session's companion credentials could not be issued (the app answers 500).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// No signing key for the session tokens.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// Signing a session token failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The access token's key vanished from the key set before its public key was read.
    #[error("the public key {0} is not in the key set")]
    NoPublicKey(String),
    /// A client's own token: the app dialect's grants always have a user.
    #[error("the grant has no user")]
    NoUser,
}

/// Issues the companion credentials of an app session (see the module doc).
pub struct Sessions {
    issuer: String,
    keyring: Arc<Keyring>,
    storage_audience: String,
    push_audience: String,
    encrypt_type: i32,
    storage_key: hmac::Key,
}

impl Sessions {
    /// Reads (or on SQLite creates) the shared storage secret; fails when it cannot.
    pub fn new(
        config: &AppConfig,
        store: &StoreConfig,
        issuer: String,
        keyring: Arc<Keyring>,
    ) -> Result<Self, StoreError> {
        let file = config
            .storage_secret_file
            .clone()
            .or_else(|| match &store.backend {
                StoreBackend::Sqlite { path } => Some(path.with_file_name("storage-secret")),
                StoreBackend::Postgres { .. } => None,
            });
        let secret = shared_secret(&config.storage_secret_env, file.as_deref())?;
        Ok(Sessions {
            issuer,
            keyring,
            storage_audience: config.storage_audience.clone(),
            push_audience: config.push_audience.clone(),
            encrypt_type: config.encrypt_type,
            storage_key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        })
    }

    /// The document's `data` object for `grant`.
    pub fn data(&self, grant: &Grant, device: Option<&str>) -> Result<Value, SessionError> {
        let user = grant.user().ok_or(SessionError::NoUser)?;
        let user_id = user.id.to_string();
        let key = self.keyring.signing_key(KeyAlg::Es256)?;
        // An opaque `token` has no key: the PEM is then that of the companion tokens.
        let kid = if grant.kid.is_empty() {
            &key.kid
        } else {
            &grant.kid
        };
        let public_key = self
            .keyring
            .public_pem(kid)
            .ok_or_else(|| SessionError::NoPublicKey(kid.clone()))?;
        let session = |token_type, audience: &str, device| {
            let token = SessionToken {
                token_type,
                audience,
                user_id: &user_id,
                session: &grant.jti,
                device,
                expires_at: grant.expires_at,
            };
            issue_session_token(&self.issuer, &key, &token, grant.issued_at)
        };
        let store_token = session(STORE_TOKEN_TYPE, &self.storage_audience, None)?;
        let push_token = match device {
            Some(device) => session(PUSH_TOKEN_TYPE, &self.push_audience, Some(device))?,
            None => String::new(),
        };
        Ok(json!({
            "access_key_secret": self.access_key_secret(&grant.jti),
            "encrypt_type": self.encrypt_type,
            "expire": grant.expires_at,
            "public_key": &*public_key,
            "push_token": push_token,
            "store_token": store_token,
            "token": grant.access_token,
            "user_id": user.id,
        }))
    }

    fn access_key_secret(&self, session: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.storage_key, session.as_bytes()).as_ref())
    }
}
