//! The `password` grant (RFC 6749 §4.3): log in by user id, by account (user name), or by any
//! login name. An unknown user costs one password verification and fails exactly like a wrong
//! password. Failures feed the back-off.

use std::net::IpAddr;

use super::client_auth::require;
use super::{Engine, Grant, GrantError, IssueOptions, Login, Subject, now, scope};
use crate::store::{AuditEvent, Client, GrantType, StoreError, User, login_key};

const BAD_LOGIN: &str = "invalid login name or password";

/// The back-off key of a login: what was typed, normalised.
fn throttle_key(login: &Login) -> String {
    match login {
        Login::UserId(id) => format!("user:#{id}"),
        Login::Account(name) | Login::AnyName(name) | Login::Phone(name) => {
            format!("user:{}", login_key(name))
        }
    }
}

/// One password grant's credentials and where they came from.
pub(super) struct Attempt<'a> {
    pub login: &'a Login,
    pub password: &'a str,
    pub source: IpAddr,
}

impl Engine {
    pub(super) async fn password(
        &self,
        client: &Client,
        attempt: Attempt<'_>,
        requested: Option<&[String]>,
        resources: Vec<String>,
        options: &IssueOptions,
    ) -> Result<Grant, GrantError> {
        require(client, GrantType::Password)?;
        let scope = scope::grant(requested, &client.scopes)?;
        let user = self
            .login(attempt.login, attempt.password, attempt.source)
            .await?;
        let mut decision = self.decision(
            client,
            Subject::User(Box::new(user.clone())),
            scope,
            options,
        );
        decision.resources = resources;
        let (grant, _) = self.user_grant(decision, &user).await?;
        Ok(grant)
    }

    /// One login attempt under the back-off (the password grant and the login page): blocked
    /// sources wait, failures count, success clears the (account, source) record; an unknown
    /// user fails exactly like a wrong password.
    pub async fn login(
        &self,
        login: &Login,
        password: &str,
        source: IpAddr,
    ) -> Result<User, GrantError> {
        let key = throttle_key(login);
        let checked = self.backoff_check(&key, source).await?;
        match self.verify_login(login, password).await {
            Ok(user) => {
                self.backoff_succeeded(&key, source, checked).await;
                Ok(user)
            }
            // A disabled account answers exactly as a wrong password does (and counts the
            // same): telling them apart would confirm the password to whoever guessed it. The
            // reason goes to the log and the audit log only.
            Err(error @ (StoreError::BadCredentials | StoreError::UserDisabled)) => {
                if matches!(error, StoreError::UserDisabled) {
                    self.audit_disabled_login(&key, source);
                }
                self.backoff_failed(&key, source).await;
                if let Some(metrics) = &self.metrics {
                    metrics.login_failed();
                }
                Err(GrantError::InvalidGrant {
                    reason: BAD_LOGIN,
                    source: Some(error),
                })
            }
            Err(error) => Err(GrantError::from_store(BAD_LOGIN, error)),
        }
    }

    /// The right password for a disabled account: logged and audited, never answered. The
    /// audit write runs beside the answer, so its time does not tell the two cases apart.
    fn audit_disabled_login(&self, key: &str, source: IpAddr) {
        tracing::info!(login = key, %source, "login refused: the account is disabled");
        let event = AuditEvent::new("login.disabled")
            .subject(key.to_owned())
            .source(source.to_string());
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(error) = store.audit(&event, now()).await {
                tracing::warn!(%error, "writing the audit record of a disabled account's login");
            }
        });
    }

    /// `Store::verify_login` for every way of naming the user; any mismatch is the same
    /// `BadCredentials` an unknown name gives, after the same password verification.
    async fn verify_login(&self, login: &Login, password: &str) -> Result<User, StoreError> {
        match login {
            Login::AnyName(name) => self.store.verify_login(name, password, now()).await,
            Login::Account(name) => {
                let user = self.store.verify_login(name, password, now()).await?;
                if user.account == login_key(name) {
                    Ok(user)
                } else {
                    Err(StoreError::BadCredentials)
                }
            }
            Login::Phone(phone) => {
                let user = self.store.verify_login(phone, password, now()).await?;
                if user.phone.as_deref() == Some(login_key(phone).as_str()) {
                    Ok(user)
                } else {
                    Err(StoreError::BadCredentials)
                }
            }
            Login::UserId(id) => {
                let account = match self.store.user(*id).await {
                    Ok(user) => user.account,
                    // "" is never a stored name: one dummy verification, then BadCredentials.
                    Err(StoreError::NotFound { .. }) => String::new(),
                    Err(other) => return Err(other),
                };
                let user = self.store.verify_login(&account, password, now()).await?;
                // Renamed in between: the name now belongs to someone else.
                if user.id == *id {
                    Ok(user)
                } else {
                    Err(StoreError::BadCredentials)
                }
            }
        }
    }
}
