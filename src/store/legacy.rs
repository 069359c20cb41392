//! Logging in against a users table owned by another application (`[users.sql]`): the users of
//! an existing system (a Laravel `users` table with `$2y$` bcrypt hashes, say) log in without
//! being migrated first.
//!
//! - **Precedence.** A login name that resolves to a local user *with a password* is verified
//!   locally and the legacy table is never asked. Otherwise (an unknown name, or a local user
//!   without a password) the operator's query is run with the name as typed (trimmed); a name
//!   it does not find costs the same one dummy Argon2id verification as everywhere else and is
//!   the same [`StoreError::BadCredentials`] as a wrong password.
//! - **Mirroring.** A good password mirrors the row into the local `users` table, in one
//!   transaction, under the legacy id and *without a local password*: refresh, token exchange,
//!   per-user revocation, `disabled`, the CLI and the dialects' user fields all work on the
//!   mirror unchanged, and since the mirror has no password its next login goes to the legacy
//!   table again (which stays the authority on passwords). Every login refreshes the mirror's
//!   names, group and profile from the columns the query returns; a column the query does not
//!   return is managed locally (e.g. roles through `authgate user update --admin`). An id that
//!   belongs to a local user with a password is a conflict: that login is refused and logged.
//!   A login name another local user with a password holds stays theirs (not mirrored); one a
//!   stale mirror holds moves to the user the legacy table now gives it to.
//! - **Roles.** A `roles` column (names separated by spaces or commas) and/or an `admin` column
//!   (truthy → the `admin` role) replace the mirror's roles at each login.
//! - **Rehash.** Read-only by default (the sessions are opened read-only). With an
//!   `update_query`, a good bcrypt (or older Argon2) password is rehashed to Argon2id and written
//!   back with it; a failing write is logged and the login still succeeds.
//!
//! Columns (by name, any SQL type that holds the value; alias them with `AS`): `id` and
//! `password` are required; `account`, `phone`, `email`, `group_id`, `roles`, `admin`,
//! `disabled`, `display_name`, `image_small`, `image_medium`, `image_large`, `premium`,
//! `content_restriction`, `mail_verified`, `policy_agreement_needed` are optional.

mod foreign;

use std::time::Duration;

use foreign::{Arg, Columns, ForeignPool, Value};

use super::db::{Tx, q};
use super::login_name::{LoginKind, normalize};
use super::password::{Verdict, check_new};
use super::user::{Rows, apply_profile, lock_user, normalize_roles, write_user};
use super::{Store, StoreError, User, UserPatch};
use crate::config::{LegacyUsersConfig, SqlText};

/// The legacy table: a lazy connection pool and the operator's statements.
pub(crate) struct LegacyUsers {
    pool: ForeignPool,
    query: SqlText,
    update_query: Option<SqlText>,
    timeout: Duration,
}

/// What the legacy table says about one user.
struct LegacyUser {
    id: i64,
    password_hash: Option<String>,
    disabled: bool,
    /// The columns the query returned; `None` fields are managed locally.
    patch: UserPatch,
}

impl LegacyUsers {
    pub(crate) fn new(config: &LegacyUsersConfig) -> Result<LegacyUsers, StoreError> {
        Ok(LegacyUsers {
            pool: ForeignPool::lazy(config)?,
            query: config.query.clone(),
            update_query: config.update_query.clone(),
            timeout: config.timeout,
        })
    }

    /// Connects and runs `SELECT 1` (a start-up check; nothing depends on it).
    pub(crate) async fn probe(&self) -> Result<(), StoreError> {
        self.bounded(self.pool.first_row("SELECT 1", Vec::new()))
            .await
            .map(|_| ())
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    async fn find(&self, login: &str) -> Result<Option<LegacyUser>, StoreError> {
        let args = (0..self.query.params)
            .map(|_| Arg::Text(login.trim().to_owned()))
            .collect();
        let row = self
            .bounded(self.pool.first_row(&self.query.sql, args))
            .await?;
        row.map(|columns| LegacyUser::from_columns(&columns))
            .transpose()
    }

    /// Writes an Argon2id hash over the verified one; `Ok(false)` without an update query.
    async fn rehash(&self, id: i64, fresh: String, old: String) -> Result<bool, StoreError> {
        let Some(update) = &self.update_query else {
            return Ok(false);
        };
        let mut args = vec![Arg::Text(fresh), Arg::Int(id), Arg::Text(old)];
        args.truncate(update.params);
        let changed = self.bounded(self.pool.execute(&update.sql, args)).await?;
        Ok(changed > 0)
    }

    async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Io {
                    context: "legacy users table".to_owned(),
                    source: std::io::ErrorKind::TimedOut.into(),
                })
            })
    }
}

impl Store {
    /// Consults `config`'s table for logins the local store does not answer (see the module
    /// doc). The connection is opened on first use.
    pub fn with_legacy_users(
        mut self,
        config: Option<&LegacyUsersConfig>,
    ) -> Result<Store, StoreError> {
        self.legacy = config
            .map(|c| LegacyUsers::new(c).map(std::sync::Arc::new))
            .transpose()?;
        Ok(self)
    }

    /// Connects to the legacy users table, if one is configured, and runs `SELECT 1`.
    pub async fn probe_legacy_users(&self) -> Result<(), StoreError> {
        match &self.legacy {
            Some(legacy) => legacy.probe().await,
            None => Ok(()),
        }
    }

    /// `verify_login` for a name with no local password behind it.
    pub(super) async fn verify_legacy_login(
        &self,
        legacy: &LegacyUsers,
        login: &str,
        password: &str,
        now: i64,
    ) -> Result<User, StoreError> {
        let found = legacy.find(login).await?;
        let stored = found.as_ref().and_then(|f| f.password_hash.clone());
        let verdict = self.passwords.verify(password, stored.clone()).await?;
        let (Verdict::Match { upgrade }, Some(found), Some(stored)) = (verdict, found, stored)
        else {
            return Err(StoreError::BadCredentials);
        };
        if found.disabled {
            return Err(StoreError::UserDisabled);
        }
        let user = self.mirror(found, now).await?;
        if user.disabled {
            return Err(StoreError::UserDisabled);
        }
        // A legacy password shorter than today's minimum keeps its old hash.
        if upgrade && legacy.update_query.is_some() && check_new(password).is_ok() {
            let fresh = self.passwords.hash(password).await?;
            match legacy.rehash(user.id, fresh, stored).await {
                Ok(true) => tracing::info!(user_id = user.id, "legacy password hash upgraded"),
                Ok(false) => {}
                Err(error) => tracing::warn!(
                    user_id = user.id,
                    %error,
                    "cannot upgrade the legacy password hash"
                ),
            }
        }
        Ok(user)
    }

    /// Creates or refreshes the local mirror of `found`, in one transaction.
    async fn mirror(&self, found: LegacyUser, now: i64) -> Result<User, StoreError> {
        let id = found.id;
        let mut tx = self.db.begin().await?;
        tx.execute(
            q(
                "INSERT INTO users (id, account, created_at, updated_at) VALUES ($1, $2, $3, $3)
               ON CONFLICT (id) DO NOTHING",
            )
            .int(id)
            .text(placeholder_account(id))
            .int(now),
        )
        .await?;
        let mut user = lock_user(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("user {id}")))?;
        if user.has_password {
            tracing::warn!(
                user_id = id,
                "a legacy user's id belongs to a local user with a password; login refused"
            );
            return Err(StoreError::conflict(format!("local user {id}")));
        }
        apply(&mut user, found.patch);
        settle_names(&mut tx, &mut user).await?;
        user.updated_at = now;
        write_user(&mut tx, &user, now, Rows::Mirrored).await?;
        tx.commit().await?;
        Ok(user)
    }
}

fn placeholder_account(id: i64) -> String {
    format!("legacy-{id}")
}

/// Applies what the legacy row says; values the local store cannot hold are dropped (logged),
/// so a messy legacy row never locks its user out.
fn apply(user: &mut User, mut patch: UserPatch) {
    // Text the local store cannot hold is dropped rather than refused.
    apply_profile(user, &mut patch, |text| {
        text.filter(|v| v.len() <= 2048 && !v.chars().any(char::is_control))
    });
    let id = user.id;
    let name = |kind: LoginKind, value: String| match normalize(kind, &value) {
        Ok(name) => Some(name),
        Err(error) => {
            tracing::warn!(user_id = id, %error, "legacy login name not mirrored");
            None
        }
    };
    if let Some(account) = patch.account {
        user.account = name(LoginKind::Account, account).unwrap_or(placeholder_account(id));
    }
    if let Some(phone) = patch.phone {
        user.phone = phone.and_then(|p| name(LoginKind::Phone, p));
    }
    if let Some(email) = patch.email {
        user.email = email.and_then(|e| name(LoginKind::Email, e));
    }
    if let Some(roles) = patch.roles {
        user.roles = normalize_roles(
            &roles
                .into_iter()
                .filter(|r| normalize_roles(std::slice::from_ref(r)).is_ok())
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default();
    }
}

/// Re-claims the mirror's three login names. A name a passwordless user (a stale mirror) holds
/// moves here; one a user with a password holds stays theirs, and the mirror goes without it
/// (the account falls back to `legacy-<id>`).
async fn settle_names(tx: &mut Tx, user: &mut User) -> Result<(), StoreError> {
    let id = user.id;
    for kind in [LoginKind::Account, LoginKind::Phone, LoginKind::Email] {
        tx.execute(
            q("DELETE FROM login_names WHERE user_id = $1 AND kind = $2")
                .int(id)
                .text(kind.as_str()),
        )
        .await?;
        let wanted = match kind {
            LoginKind::Account => Some(user.account.clone()),
            LoginKind::Phone => user.phone.clone(),
            LoginKind::Email => user.email.clone(),
        };
        let Some(name) = wanted else { continue };
        if take_name(tx, id, kind, &name).await? {
            continue;
        }
        tracing::warn!(
            user_id = id,
            kind = kind.as_str(),
            "a legacy login name belongs to a local user with a password; not mirrored"
        );
        match kind {
            LoginKind::Account => {
                user.account = placeholder_account(id);
                if !take_name(tx, id, kind, &user.account).await? {
                    return Err(StoreError::conflict(format!(
                        "login name `{}`",
                        user.account
                    )));
                }
            }
            LoginKind::Phone => user.phone = None,
            LoginKind::Email => user.email = None,
        }
    }
    Ok(())
}

/// Claims `name` for `id`, taking it from a passwordless user; `false` if a user with a
/// password holds it.
async fn take_name(tx: &mut Tx, id: i64, kind: LoginKind, name: &str) -> Result<bool, StoreError> {
    tx.execute(
        q("DELETE FROM login_names WHERE name = $1 AND user_id <> $2
             AND user_id IN (SELECT id FROM users WHERE password_hash IS NULL)")
        .text(name)
        .int(id),
    )
    .await?;
    super::user::insert_name(tx, id, kind, name).await
}

impl LegacyUser {
    fn from_columns(columns: &Columns) -> Result<LegacyUser, StoreError> {
        let c = Reader(columns);
        let id = c
            .int("id")?
            .flatten()
            .ok_or_else(|| missing("id", "an integer user id"))?;
        if !columns.contains_key("password") {
            return Err(missing("password", "the password hash (NULL: no password)"));
        }
        let roles = match (c.text("roles")?, c.flag("admin")?) {
            (None, None) => None,
            (listed, admin) => {
                let mut roles: Vec<String> = listed
                    .flatten()
                    .unwrap_or_default()
                    .split([' ', ','])
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect();
                if admin == Some(true) {
                    roles.push("admin".to_owned());
                }
                Some(roles)
            }
        };
        Ok(LegacyUser {
            id,
            password_hash: c.text("password")?.flatten(),
            disabled: c.flag("disabled")?.unwrap_or(false),
            patch: UserPatch {
                account: c.text("account")?.flatten(),
                phone: c.text("phone")?,
                email: c.text("email")?,
                group_id: c.int("group_id")?.map(Option::unwrap_or_default),
                roles,
                display_name: c.text("display_name")?,
                image_small: c.text("image_small")?,
                image_medium: c.text("image_medium")?,
                image_large: c.text("image_large")?,
                premium: c.flag("premium")?,
                content_restriction: c.int("content_restriction")?.map(Option::unwrap_or_default),
                mail_verified: c.flag("mail_verified")?,
                policy_agreement_needed: c.flag("policy_agreement_needed")?,
            },
        })
    }
}

fn missing(column: &str, what: &str) -> StoreError {
    StoreError::invalid(
        "users.sql.query",
        format!("must return a column `{column}` with {what}"),
    )
}

fn wrong_type(column: &str, what: &str) -> StoreError {
    StoreError::invalid(
        "users.sql.query",
        format!("column `{column}` does not hold {what}"),
    )
}

/// Typed reads of a row: `None` = the query has no such column, `Some(None)` = NULL.
struct Reader<'a>(&'a Columns);

impl Reader<'_> {
    fn int(&self, column: &str) -> Result<Option<Option<i64>>, StoreError> {
        self.0
            .get(column)
            .map(|value| match value {
                Value::Null => Ok(None),
                Value::Int(n) => Ok(Some(*n)),
                Value::Bool(b) => Ok(Some(i64::from(*b))),
                Value::Text(t) => t
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| wrong_type(column, "an integer")),
                Value::Other => Err(wrong_type(column, "an integer")),
            })
            .transpose()
    }

    fn text(&self, column: &str) -> Result<Option<Option<String>>, StoreError> {
        self.0
            .get(column)
            .map(|value| match value {
                Value::Null => Ok(None),
                Value::Text(t) => Ok(Some(t.clone())),
                Value::Int(n) => Ok(Some(n.to_string())),
                Value::Bool(_) | Value::Other => Err(wrong_type(column, "text")),
            })
            .transpose()
    }

    /// Booleans, integers (0 = false) and `true`/`false`/`1`/`0` text; NULL is false.
    fn flag(&self, column: &str) -> Result<Option<bool>, StoreError> {
        self.0
            .get(column)
            .map(|value| match value {
                Value::Null => Ok(false),
                Value::Bool(b) => Ok(*b),
                Value::Int(n) => Ok(*n != 0),
                Value::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                    "1" | "true" | "t" | "yes" | "y" => Ok(true),
                    "0" | "false" | "f" | "no" | "n" | "" => Ok(false),
                    _ => Err(wrong_type(column, "a boolean")),
                },
                Value::Other => Err(wrong_type(column, "a boolean")),
            })
            .transpose()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, Value)]) -> Columns {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn a_laravel_row_reads_with_absent_columns_left_alone() {
        let columns = row(&[
            ("id", Value::Int(7)),
            ("password", Value::Text("$2y$10$x".into())),
            ("email", Value::Text("Taylor@Example.com".into())),
            ("group_id", Value::Text("42".into())),
            ("admin", Value::Int(1)),
            ("display_name", Value::Null),
        ]);
        let user = LegacyUser::from_columns(&columns).unwrap();
        assert_eq!(user.id, 7);
        assert_eq!(user.password_hash.as_deref(), Some("$2y$10$x"));
        assert_eq!(user.patch.group_id, Some(42));
        assert_eq!(user.patch.roles, Some(vec!["admin".to_owned()]));
        assert_eq!(user.patch.display_name, Some(None));
        assert_eq!(user.patch.account, None);
        assert_eq!(user.patch.phone, None);
        assert!(!user.disabled);
    }

    #[test]
    fn id_and_password_columns_are_required() {
        let no_password = row(&[("id", Value::Int(7))]);
        let error = LegacyUser::from_columns(&no_password).err().unwrap();
        assert!(error.to_string().contains("`password`"), "{error}");
        let no_id = row(&[("password", Value::Null)]);
        assert!(LegacyUser::from_columns(&no_id).is_err());
        let bad_id = row(&[("id", Value::Text("x".into())), ("password", Value::Null)]);
        assert!(LegacyUser::from_columns(&bad_id).is_err());
    }

    #[test]
    fn invalid_names_fall_back_instead_of_failing_the_login() {
        let mut user = User {
            id: 9,
            account: placeholder_account(9),
            phone: None,
            email: None,
            group_id: 0,
            roles: vec!["admin".into()],
            disabled: false,
            has_password: false,
            profile: Default::default(),
            not_before: None,
            created_at: 0,
            updated_at: 0,
        };
        let patch = UserPatch {
            account: Some("Taylor Otwell".into()),
            email: Some(Some("not an address".into())),
            roles: Some(vec!["Editor".into(), "bad role!".into()]),
            ..UserPatch::default()
        };
        apply(&mut user, patch);
        assert_eq!(user.account, "legacy-9");
        assert_eq!(user.email, None);
        assert_eq!(user.roles, vec!["editor".to_owned()]);
    }
}
