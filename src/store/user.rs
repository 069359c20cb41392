//! Users: identity, login names, password, roles, group and the profile the dialects render.

use super::db::{Q, Row, Tx, q};
use super::login_name::{LoginKind, login_key, normalize};
use super::password::{Verdict, check_new};
use super::{Store, StoreError};

/// What the `mobile` dialect renders about a user besides its names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// The name shown for the user (not a login name).
    pub display_name: Option<String>,
    /// Profile image URLs: small (16×16), medium (50×50), large (170×170).
    pub image_small: Option<String>,
    /// Medium profile image URL.
    pub image_medium: Option<String>,
    /// Large profile image URL.
    pub image_large: Option<String>,
    /// A paying user (the `mobile` document's `is_premium`).
    pub premium: bool,
    /// Content-restriction level (the `mobile` document's `x_restrict`); 0 = none.
    pub content_restriction: i64,
    /// The e-mail address was verified.
    pub mail_verified: bool,
    /// The user must accept the current terms before going on.
    pub policy_agreement_needed: bool,
}

/// A user as stored (never with its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user id in tokens (`sub`) and the injected `user_id`; for a legacy user, the table's id.
    pub id: i64,
    /// Normalised account (user name).
    pub account: String,
    /// Normalised phone number (digits only).
    pub phone: Option<String>,
    /// Normalised e-mail address (lower case).
    pub email: Option<String>,
    /// The group injected as `group_id`; 0 means none.
    pub group_id: i64,
    /// Sorted, unique role names (`admin`, …).
    pub roles: Vec<String>,
    /// A disabled user cannot log in, and their earlier tokens are refused (not-before).
    pub disabled: bool,
    /// Whether a local password is set (a mirrored legacy user has none: the table verifies).
    pub has_password: bool,
    /// What the dialects render besides ids and names.
    pub profile: Profile,
    /// Tokens issued before this time (Unix seconds) are refused.
    pub not_before: Option<i64>,
    /// When the user was added (Unix seconds).
    pub created_at: i64,
    /// Last change (Unix seconds).
    pub updated_at: i64,
}

impl User {
    /// Whether the user has the `admin` role (admin routes, impersonation, token exchange).
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }
}

/// A user to add. Names are validated and normalised by the store.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// `None`: the store assigns the next free id.
    pub id: Option<i64>,
    /// The user name (required); a login name, normalised by the store.
    pub account: String,
    /// A phone number to log in with.
    pub phone: Option<String>,
    /// An e-mail address to log in with.
    pub email: Option<String>,
    /// The group; 0 means none.
    pub group_id: i64,
    /// Role names (sorted and de-duplicated by the store).
    pub roles: Vec<String>,
    /// The profile the dialects render.
    pub profile: Profile,
}

/// Changes to a user; `None` leaves a field as it is, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// A new user name (must be free).
    pub account: Option<String>,
    /// A new phone number (must be free), or none.
    pub phone: Option<Option<String>>,
    /// A new e-mail address (must be free), or none.
    pub email: Option<Option<String>>,
    /// A new group.
    pub group_id: Option<i64>,
    /// Replaces the roles.
    pub roles: Option<Vec<String>>,
    /// A new display name, or none.
    pub display_name: Option<Option<String>>,
    /// A new small image URL, or none.
    pub image_small: Option<Option<String>>,
    /// A new medium image URL, or none.
    pub image_medium: Option<Option<String>>,
    /// A new large image URL, or none.
    pub image_large: Option<Option<String>>,
    /// A new premium flag.
    pub premium: Option<bool>,
    /// A new content-restriction level.
    pub content_restriction: Option<i64>,
    /// A new mail-verified flag.
    pub mail_verified: Option<bool>,
    /// A new policy-agreement flag.
    pub policy_agreement_needed: Option<bool>,
}

/// The columns [`user_from_row`] reads, for a query on `users` or one joining it to
/// `refresh_tokens` (whose columns have other names).
macro_rules! user_columns {
    () => {
        "users.id, account, phone, email, group_id, roles, disabled, display_name,
         image_small, image_medium, image_large, premium, content_restriction,
         mail_verified, policy_agreement_needed, not_before, created_at, updated_at,
         password_hash"
    };
}
pub(super) use user_columns;

macro_rules! user_select {
    ($($tail:literal),*) => {
        concat!("SELECT ", user_columns!(), " FROM users ", $($tail),*)
    };
}

pub(super) fn user_from_row(row: &Row) -> Result<User, StoreError> {
    let roles: String = row.get("roles")?;
    Ok(User {
        id: row.get("id")?,
        account: row.get("account")?,
        phone: row.get("phone")?,
        email: row.get("email")?,
        group_id: row.get("group_id")?,
        roles: roles.split_whitespace().map(str::to_owned).collect(),
        disabled: row.get("disabled")?,
        has_password: row.get::<Option<String>>("password_hash")?.is_some(),
        profile: Profile {
            display_name: row.get("display_name")?,
            image_small: row.get("image_small")?,
            image_medium: row.get("image_medium")?,
            image_large: row.get("image_large")?,
            premium: row.get("premium")?,
            content_restriction: row.get("content_restriction")?,
            mail_verified: row.get("mail_verified")?,
            policy_agreement_needed: row.get("policy_agreement_needed")?,
        },
        not_before: row.get("not_before")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// Role names: lower-case letters, digits, `_`, `-`, `.`; stored sorted and unique.
pub(super) fn normalize_roles(roles: &[String]) -> Result<Vec<String>, StoreError> {
    let mut out: Vec<String> = Vec::with_capacity(roles.len());
    for role in roles {
        let role = role.trim().to_ascii_lowercase();
        let valid = !role.is_empty()
            && role.len() <= 64
            && role
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            return Err(StoreError::invalid(
                "roles",
                format!("`{role}` is not a role name (letters, digits, _ - .)"),
            ));
        }
        out.push(role);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn normalize_opt(kind: LoginKind, value: Option<&str>) -> Result<Option<String>, StoreError> {
    value.map(|v| normalize(kind, v)).transpose()
}

fn check_text(field: &'static str, value: &Option<String>) -> Result<(), StoreError> {
    match value {
        Some(v) if v.len() > 2048 || v.chars().any(char::is_control) => Err(StoreError::invalid(
            field,
            "must be at most 2048 bytes without control characters",
        )),
        _ => Ok(()),
    }
}

fn check_profile(p: &Profile) -> Result<(), StoreError> {
    check_text("display_name", &p.display_name)?;
    check_text("image_small", &p.image_small)?;
    check_text("image_medium", &p.image_medium)?;
    check_text("image_large", &p.image_large)
}

/// Binds every column of `users` except `id`, `password_hash` and times, in the order of
/// the INSERT/UPDATE statements below ($2 … $15).
pub(super) fn bind_user_columns(query: Q, u: &User) -> Q {
    query
        .text(u.account.clone())
        .opt_text(u.phone.clone())
        .opt_text(u.email.clone())
        .int(u.group_id)
        .text(u.roles.join(" "))
        .bool(u.disabled)
        .opt_text(u.profile.display_name.clone())
        .opt_text(u.profile.image_small.clone())
        .opt_text(u.profile.image_medium.clone())
        .opt_text(u.profile.image_large.clone())
        .bool(u.profile.premium)
        .int(u.profile.content_restriction)
        .bool(u.profile.mail_verified)
        .bool(u.profile.policy_agreement_needed)
}

/// Which row [`write_user`] may overwrite.
pub(super) enum Rows {
    /// The user's row, whatever it holds.
    Any,
    /// Only a mirrored legacy user's row (no local password): a local user who took the id
    /// in the meantime is never overwritten.
    Mirrored,
}

/// Writes every column of `user` (see [`bind_user_columns`]) and `updated_at = now` to its
/// row, if `rows` allows.
pub(super) async fn write_user(
    tx: &mut Tx,
    user: &User,
    now: i64,
    rows: Rows,
) -> Result<u64, StoreError> {
    macro_rules! update {
        ($condition:literal) => {
            concat!(
                "UPDATE users SET account = $2, phone = $3, email = $4, group_id = $5,
                 roles = $6, disabled = $7, display_name = $8, image_small = $9,
                 image_medium = $10, image_large = $11, premium = $12,
                 content_restriction = $13, mail_verified = $14,
                 policy_agreement_needed = $15, updated_at = $16
               WHERE id = $1",
                $condition
            )
        };
    }
    let sql = match rows {
        Rows::Any => update!(""),
        Rows::Mirrored => update!(" AND password_hash IS NULL"),
    };
    tx.execute(bind_user_columns(q(sql).int(user.id), user).int(now))
        .await
}

/// A user, locked for the rest of `tx` (`FOR UPDATE` on PostgreSQL; SQLite's write
/// transaction excludes other writers already).
pub(super) async fn lock_user(tx: &mut Tx, id: i64) -> Result<Option<User>, StoreError> {
    let row = tx
        .fetch_optional(
            Q::each(
                user_select!("WHERE id = $1"),
                user_select!("WHERE id = $1 FOR UPDATE"),
            )
            .int(id),
        )
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// Claims `name` for `user_id`; a name another user holds is a conflict (whatever its kind).
async fn claim_name(
    tx: &mut Tx,
    user_id: i64,
    kind: LoginKind,
    name: &str,
) -> Result<(), StoreError> {
    if !insert_name(tx, user_id, kind, name).await? {
        return Err(StoreError::conflict(format!("login name `{name}`")));
    }
    Ok(())
}

/// Records `name` for `user_id` unless someone holds it; `false` if someone does.
pub(super) async fn insert_name(
    tx: &mut Tx,
    user_id: i64,
    kind: LoginKind,
    name: &str,
) -> Result<bool, StoreError> {
    let inserted = tx
        .execute(
            q(
                "INSERT INTO login_names (name, user_id, kind) VALUES ($1, $2, $3)
               ON CONFLICT (name) DO NOTHING",
            )
            .text(name)
            .int(user_id)
            .text(kind.as_str()),
        )
        .await?;
    Ok(inserted == 1)
}

impl Store {
    /// Adds a user with its login names, all in one transaction. `password`: `None` leaves the
    /// user without one (no password login).
    pub async fn add_user(
        &self,
        new: NewUser,
        password: Option<&str>,
        now: i64,
    ) -> Result<User, StoreError> {
        let hash = match password {
            Some(p) => {
                check_new(p)?;
                Some(self.passwords.hash(p).await?)
            }
            None => None,
        };
        let mut user = User {
            id: new.id.unwrap_or(0),
            account: normalize(LoginKind::Account, &new.account)?,
            phone: normalize_opt(LoginKind::Phone, new.phone.as_deref())?,
            email: normalize_opt(LoginKind::Email, new.email.as_deref())?,
            group_id: new.group_id,
            roles: normalize_roles(&new.roles)?,
            disabled: false,
            has_password: hash.is_some(),
            profile: new.profile,
            not_before: None,
            created_at: now,
            updated_at: now,
        };
        check_profile(&user.profile)?;
        // An assigned id can race another instance's; retry with the next one.
        for _ in 0..5 {
            let mut tx = self.db.begin().await?;
            if new.id.is_none() {
                let row = tx
                    .fetch_optional(q("SELECT COALESCE(MAX(id), 0) + 1 AS next FROM users"))
                    .await?;
                user.id = row.map(|r| r.get::<i64>("next")).transpose()?.unwrap_or(1);
            }
            let inserted = tx
                .execute(
                    bind_user_columns(
                        q(
                            "INSERT INTO users (id, account, phone, email, group_id, roles,
                             disabled, display_name, image_small, image_medium, image_large,
                             premium, content_restriction, mail_verified,
                             policy_agreement_needed, password_hash, created_at, updated_at)
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                                   $15, $16, $17, $17)
                           ON CONFLICT (id) DO NOTHING",
                        )
                        .int(user.id),
                        &user,
                    )
                    .opt_text(hash.clone())
                    .int(now),
                )
                .await?;
            if inserted == 0 {
                if new.id.is_some() {
                    return Err(StoreError::conflict(format!("user id {}", user.id)));
                }
                continue;
            }
            claim_name(&mut tx, user.id, LoginKind::Account, &user.account).await?;
            if let Some(phone) = &user.phone {
                claim_name(&mut tx, user.id, LoginKind::Phone, phone).await?;
            }
            if let Some(email) = &user.email {
                claim_name(&mut tx, user.id, LoginKind::Email, email).await?;
            }
            tx.commit().await?;
            return Ok(user);
        }
        Err(StoreError::conflict(
            "user id (assigned concurrently; retry)",
        ))
    }

    /// The user `id`; [`StoreError::NotFound`] when there is none.
    pub async fn user(&self, id: i64) -> Result<User, StoreError> {
        let row = self
            .db
            .fetch_optional(q(user_select!("WHERE id = $1")).int(id))
            .await?
            .ok_or_else(|| StoreError::not_found(format!("user {id}")))?;
        user_from_row(&row)
    }

    /// The user one login name (account, phone or e-mail, in any spelling) resolves to.
    pub async fn user_by_login(&self, name: &str) -> Result<User, StoreError> {
        let key = login_key(name);
        let row = self
            .db
            .fetch_optional(
                q(user_select!(
                    "WHERE id = (SELECT user_id FROM login_names WHERE name = $1)"
                ))
                .text(key.clone()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found(format!("user `{key}`")))?;
        user_from_row(&row)
    }

    /// Users by id, `limit` at a time, starting after `after_id`.
    pub async fn users(&self, after_id: Option<i64>, limit: i64) -> Result<Vec<User>, StoreError> {
        let rows = self
            .db
            .fetch_all(
                q(user_select!("WHERE id > $1 ORDER BY id LIMIT $2"))
                    .int(after_id.unwrap_or(i64::MIN))
                    .int(limit.clamp(1, 10_000)),
            )
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Applies `patch` in one transaction; changed login names are re-claimed (a name another
    /// user holds is a conflict and nothing changes).
    pub async fn update_user(
        &self,
        id: i64,
        patch: UserPatch,
        now: i64,
    ) -> Result<User, StoreError> {
        let mut tx = self.db.begin().await?;
        let row = tx
            .fetch_optional(
                Q::each(
                    user_select!("WHERE id = $1"),
                    user_select!("WHERE id = $1 FOR UPDATE"),
                )
                .int(id),
            )
            .await?
            .ok_or_else(|| StoreError::not_found(format!("user {id}")))?;
        let mut user = user_from_row(&row)?;
        let before = (user.group_id, user.roles.clone());
        let renamed = apply_patch(&mut user, patch)?;
        for (kind, name) in renamed {
            tx.execute(
                q("DELETE FROM login_names WHERE user_id = $1 AND kind = $2")
                    .int(id)
                    .text(kind.as_str()),
            )
            .await?;
            if let Some(name) = name {
                claim_name(&mut tx, id, kind, &name).await?;
            }
        }
        user.updated_at = now;
        write_user(&mut tx, &user, now, Rows::Any).await?;
        // Tokens already issued carry the old group and roles: the proxy path reads the
        // current ones for every user marked here (`Store::revocations`, `keyring`).
        if before != (user.group_id, user.roles.clone()) {
            tx.execute(
                q("UPDATE users SET identity_changed_at = $1 WHERE id = $2")
                    .int(now)
                    .int(id),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(user)
    }

    /// Sets a new password; every token issued before now is refused from now on.
    pub async fn set_password(&self, id: i64, password: &str, now: i64) -> Result<(), StoreError> {
        check_new(password)?;
        let hash = self.passwords.hash(password).await?;
        let mut tx = self.db.begin().await?;
        let updated = tx
            .execute(
                q("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                    .text(hash)
                    .int(now)
                    .int(id),
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::not_found(format!("user {id}")));
        }
        revoke_user_tokens(&mut tx, id, now).await?;
        tx.commit().await
    }

    /// Disables (refusing logins and every token issued until now) or enables a user.
    pub async fn set_disabled(
        &self,
        id: i64,
        disabled: bool,
        now: i64,
    ) -> Result<User, StoreError> {
        let mut tx = self.db.begin().await?;
        let updated = tx
            .execute(
                q("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3")
                    .bool(disabled)
                    .int(now)
                    .int(id),
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::not_found(format!("user {id}")));
        }
        if disabled {
            revoke_user_tokens(&mut tx, id, now).await?;
        }
        tx.commit().await?;
        self.user(id).await
    }

    /// "Log out everywhere": tokens issued before `now` are refused (`not_before`), every
    /// refresh token of the user is revoked and every browser session ends.
    pub async fn revoke_user_tokens(&self, id: i64, now: i64) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        revoke_user_tokens(&mut tx, id, now).await?;
        tx.commit().await
    }

    /// Checks a login: the user `login` names, with this password, not disabled. An unknown
    /// name costs one Argon2 verification like a wrong password, and fails the same way. A
    /// bcrypt (or older-Argon2) hash that matches is replaced by a current Argon2id hash.
    /// A name with no local password behind it goes to the legacy users table when one is
    /// configured (`legacy.rs`: precedence and mirroring).
    pub async fn verify_login(
        &self,
        login: &str,
        password: &str,
        now: i64,
    ) -> Result<User, StoreError> {
        let row = self
            .db
            .fetch_optional(
                q(user_select!(
                    "WHERE id = (SELECT user_id FROM login_names WHERE name = $1)"
                ))
                .text(login_key(login)),
            )
            .await?;
        let (user, stored) = match &row {
            Some(row) => (
                Some(user_from_row(row)?),
                row.get::<Option<String>>("password_hash")?,
            ),
            None => (None, None),
        };
        // No local password behind the name: the legacy users table, if any, answers.
        if stored.is_none()
            && let Some(legacy) = &self.legacy
        {
            return self.verify_legacy_login(legacy, login, password, now).await;
        }
        let verdict = self.passwords.verify(password, stored.clone()).await?;
        let (Verdict::Match { upgrade }, Some(user)) = (verdict, user) else {
            return Err(StoreError::BadCredentials);
        };
        if user.disabled {
            return Err(StoreError::UserDisabled);
        }
        // A legacy password shorter than today's minimum keeps its old hash.
        if upgrade && check_new(password).is_ok() {
            let fresh = self.passwords.hash(password).await?;
            // Only if the hash is still the one we verified (a concurrent set-password wins).
            self.db
                .execute(
                    q("UPDATE users SET password_hash = $1, updated_at = $2
                       WHERE id = $3 AND password_hash = $4")
                    .text(fresh)
                    .int(now)
                    .int(user.id)
                    .opt_text(stored),
                )
                .await?;
        }
        Ok(user)
    }

    /// Replaces a user's stored hash as is (importing users from a legacy system whose hashes
    /// are bcrypt). The hash must be Argon2 or bcrypt in PHC/modular-crypt form.
    pub async fn import_password_hash(
        &self,
        id: i64,
        hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let known = ["$argon2id$", "$2y$", "$2b$", "$2a$"];
        if !known.iter().any(|p| hash.starts_with(p)) {
            return Err(StoreError::invalid(
                "password_hash",
                "is neither Argon2id nor bcrypt",
            ));
        }
        let updated = self
            .db
            .execute(
                q("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                    .text(hash)
                    .int(now)
                    .int(id),
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::not_found(format!("user {id}")));
        }
        Ok(())
    }
}

pub(crate) async fn revoke_user_tokens(tx: &mut Tx, id: i64, now: i64) -> Result<(), StoreError> {
    let updated = tx
        .execute(
            q("UPDATE users SET not_before = $1 WHERE id = $2")
                .int(now)
                .int(id),
        )
        .await?;
    if updated == 0 {
        return Err(StoreError::not_found(format!("user {id}")));
    }
    tx.execute(
        q("UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
            .int(now)
            .int(id),
    )
    .await?;
    // The not-before time already ends them; removing them keeps `session list` and the
    // table honest.
    tx.execute(q("DELETE FROM login_sessions WHERE user_id = $1").int(id))
        .await?;
    Ok(())
}

/// Applies a patch to `user`; returns the login names that changed (kind, new name).
fn apply_patch(
    user: &mut User,
    mut patch: UserPatch,
) -> Result<Vec<(LoginKind, Option<String>)>, StoreError> {
    apply_profile(user, &mut patch, |text| text);
    let mut renamed = Vec::new();
    if let Some(account) = patch.account {
        let account = normalize(LoginKind::Account, &account)?;
        if account != user.account {
            renamed.push((LoginKind::Account, Some(account.clone())));
            user.account = account;
        }
    }
    if let Some(phone) = patch.phone {
        let phone = normalize_opt(LoginKind::Phone, phone.as_deref())?;
        if phone != user.phone {
            renamed.push((LoginKind::Phone, phone.clone()));
            user.phone = phone;
        }
    }
    if let Some(email) = patch.email {
        let email = normalize_opt(LoginKind::Email, email.as_deref())?;
        if email != user.email {
            renamed.push((LoginKind::Email, email.clone()));
            user.email = email;
        }
    }
    if let Some(roles) = patch.roles {
        user.roles = normalize_roles(&roles)?;
    }
    check_profile(&user.profile)?;
    Ok(renamed)
}

/// Applies the group and profile fields of `patch` (names and roles are each caller's own
/// business: checked for a local edit, filtered for a legacy mirror); `text` passes each
/// optional text field or replaces it.
pub(super) fn apply_profile(
    user: &mut User,
    patch: &mut UserPatch,
    text: impl Fn(Option<String>) -> Option<String>,
) {
    let p = &mut user.profile;
    set(&mut user.group_id, patch.group_id.take());
    set(&mut p.display_name, patch.display_name.take().map(&text));
    set(&mut p.image_small, patch.image_small.take().map(&text));
    set(&mut p.image_medium, patch.image_medium.take().map(&text));
    set(&mut p.image_large, patch.image_large.take().map(&text));
    set(&mut p.premium, patch.premium.take());
    set(&mut p.content_restriction, patch.content_restriction.take());
    set(&mut p.mail_verified, patch.mail_verified.take());
    set(
        &mut p.policy_agreement_needed,
        patch.policy_agreement_needed.take(),
    );
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}
