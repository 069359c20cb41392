//! OAuth clients (the `app` dialect calls them apps and sends an `app_id` alias).
//!
//! A confidential client's secret is a 256-bit random value shown once; the store keeps its
//! SHA-256 digest and compares in constant time. (Argon2 is for low-entropy human passwords; on
//! a random secret it would only cap token issuance at a few per second per core.)

use std::time::Duration;

use super::db::{Row, q};
use super::keys::KeyAlg;
use super::secret::{digest_matches, digest_of, new_token};
use super::{FailureCount, Store, StoreError, secs};

/// An OAuth grant a client may be registered for; a token endpoint refuses a grant the client
/// lacks (`unauthorized_client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantType {
    /// RFC 6749 §4.1: a code from the login page, exchanged at the token endpoint.
    AuthorizationCode,
    /// RFC 6749 §4.2: an access token in the redirect's fragment, never a refresh token.
    Implicit,
    /// RFC 6749 §4.3: the resource owner's login name and password.
    Password,
    /// RFC 6749 §4.4: a confidential client acting for itself (no user).
    ClientCredentials,
    /// RFC 6749 §6: rotating refresh tokens are issued and accepted.
    RefreshToken,
    /// RFC 8693 token exchange (an admin obtaining a token for a user).
    TokenExchange,
}

impl GrantType {
    /// Every grant, in the order lists and errors show them.
    pub const ALL: [GrantType; 6] = [
        GrantType::AuthorizationCode,
        GrantType::Implicit,
        GrantType::Password,
        GrantType::ClientCredentials,
        GrantType::RefreshToken,
        GrantType::TokenExchange,
    ];

    /// The RFC 6749 name (`authorization_code`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::Implicit => "implicit",
            GrantType::Password => "password",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::RefreshToken => "refresh_token",
            GrantType::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        }
    }

    /// The RFC name, or `token_exchange` for the RFC 8693 URN.
    pub fn parse(text: &str) -> Result<GrantType, StoreError> {
        let text = text.trim();
        if text == "token_exchange" {
            return Ok(GrantType::TokenExchange);
        }
        GrantType::ALL
            .into_iter()
            .find(|g| g.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
                StoreError::invalid(
                    "grants",
                    format!("`{text}` is not one of {}", known.join(", ")),
                )
            })
    }
}

/// A registered client (without its secret).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    /// The `client_id`: 1–128 characters of `A-Z a-z 0-9 . _ ~ -`, unique.
    pub id: String,
    /// The alias the `app` dialect sends in its `app_id` header.
    pub app_id: Option<String>,
    /// Shown on the login page.
    pub display_name: Option<String>,
    /// Public clients (apps, SPAs) have no secret; confidential ones must present it.
    pub public: bool,
    /// What it may use; never empty, no duplicates, no `client_credentials` for a public client.
    pub grants: Vec<GrantType>,
    /// Compared exactly (RFC 9700 §4.1.3).
    pub redirect_uris: Vec<String>,
    /// The scopes it may be granted; a request without `scope` gets all of them.
    pub scopes: Vec<String>,
    /// Per-client lifetimes; `None`: the dialect's default.
    pub access_ttl: Option<Duration>,
    /// Per-client refresh-token lifetime; `None`: the dialect's default.
    pub refresh_ttl: Option<Duration>,
    /// Where OpenID Connect RP-initiated logout may send the browser back to; compared
    /// exactly, like `redirect_uris`.
    pub post_logout_redirect_uris: Vec<String>,
    /// The algorithm of its ID tokens: `Rs256` or `Es256`; `None`: the default, RS256.
    pub id_token_alg: Option<KeyAlg>,
    /// The RFC 8707 resources its tokens may be issued for: absolute URIs without a fragment,
    /// no duplicates, compared exactly.
    pub resources: Vec<String>,
    /// The resource a request naming none gets; always one of `resources`. `None`: no default.
    pub default_resource: Option<String>,
    /// Registration time (Unix seconds).
    pub created_at: i64,
    /// Last change (Unix seconds).
    pub updated_at: i64,
}

impl Client {
    /// Whether the client is registered for `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grants.contains(&grant)
    }
}

/// What `add_client` registers; validated there like a [`Client`] (ids, redirect URIs, scopes).
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    /// The `client_id`.
    pub id: String,
    /// The `app` dialect's alias, unique across clients.
    pub app_id: Option<String>,
    /// Shown on the login page.
    pub display_name: Option<String>,
    /// A public client (no secret); else confidential.
    pub public: bool,
    /// Grants it may use (duplicates dropped).
    pub grants: Vec<GrantType>,
    /// Required for `authorization_code` and `implicit`.
    pub redirect_uris: Vec<String>,
    /// Scopes it may be granted.
    pub scopes: Vec<String>,
    /// Its own access-token lifetime; `None`: the dialect's.
    pub access_ttl: Option<Duration>,
    /// Its own refresh-token lifetime; `None`: the dialect's.
    pub refresh_ttl: Option<Duration>,
    /// Where logout may send the browser back to (duplicates dropped).
    pub post_logout_redirect_uris: Vec<String>,
    /// Its ID tokens' algorithm (`Rs256` or `Es256`); `None`: RS256.
    pub id_token_alg: Option<KeyAlg>,
    /// RFC 8707 resources its tokens may be issued for (absolute URIs without a fragment;
    /// duplicates dropped).
    pub resources: Vec<String>,
    /// The resource a request naming none gets; must be one of `resources`.
    pub default_resource: Option<String>,
}

/// Changes to a client; `None` leaves a field, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct ClientPatch {
    /// New `app_id` alias (must be free).
    pub app_id: Option<Option<String>>,
    /// New display name.
    pub display_name: Option<Option<String>>,
    /// Replaces the grants.
    pub grants: Option<Vec<GrantType>>,
    /// Replaces the redirect URIs.
    pub redirect_uris: Option<Vec<String>>,
    /// Replaces the scopes.
    pub scopes: Option<Vec<String>>,
    /// New access-token lifetime.
    pub access_ttl: Option<Option<Duration>>,
    /// New refresh-token lifetime.
    pub refresh_ttl: Option<Option<Duration>>,
    /// Replaces the post-logout redirect URIs.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// New ID token algorithm (`Some(None)`: back to the default).
    pub id_token_alg: Option<Option<KeyAlg>>,
    /// Replaces the RFC 8707 resources (the default, if kept, must stay among them).
    pub resources: Option<Vec<String>>,
    /// New default resource (`Some(None)`: no default); must be one of the resources.
    pub default_resource: Option<Option<String>>,
}

const MIN_SECRET_BYTES: usize = 16;

fn client_from_row(row: &Row) -> Result<Client, StoreError> {
    let grants: String = row.get("grants")?;
    let uris: String = row.get("redirect_uris")?;
    let logout_uris: String = row.get("post_logout_redirect_uris")?;
    let resources: String = row.get("resources")?;
    let scopes: String = row.get("scopes")?;
    let ttl = |name: &str| -> Result<Option<Duration>, StoreError> {
        Ok(row
            .get::<Option<i64>>(name)?
            .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0))))
    };
    Ok(Client {
        id: row.get("id")?,
        app_id: row.get("app_id")?,
        display_name: row.get("display_name")?,
        public: row.get("public")?,
        grants: grants
            .split_whitespace()
            .map(GrantType::parse)
            .collect::<Result<_, _>>()?,
        redirect_uris: uris.split_whitespace().map(str::to_owned).collect(),
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        access_ttl: ttl("access_ttl")?,
        refresh_ttl: ttl("refresh_ttl")?,
        post_logout_redirect_uris: logout_uris.split_whitespace().map(str::to_owned).collect(),
        id_token_alg: row
            .get::<Option<String>>("id_token_alg")?
            .map(|alg| KeyAlg::parse(&alg))
            .transpose()?,
        resources: resources.split_whitespace().map(str::to_owned).collect(),
        default_resource: row.get("default_resource")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// Client ids and app ids: 1–128 characters of `A-Z a-z 0-9 . _ ~ -`.
fn check_id(field: &'static str, id: &str) -> Result<(), StoreError> {
    let valid = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-'));
    if valid {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            format!("`{id}` must be 1-128 characters of A-Z a-z 0-9 . _ ~ -"),
        ))
    }
}

/// Absolute URI with a scheme, no fragment (RFC 6749 §3.1.2), no whitespace. `field` names
/// the list it is in (`redirect_uris`, `post_logout_redirect_uris`, and `resources`: RFC 8707
/// §2 asks the same of a resource indicator).
/// An absolute URI (a scheme, then `:`) without a fragment, whitespace or control characters,
/// at most 2048 bytes: what redirect URIs and RFC 8707 resources must be.
pub fn is_absolute_uri(uri: &str) -> bool {
    let scheme_ok = uri.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    let clean = !uri.contains('#') && !uri.chars().any(|c| c.is_whitespace() || c.is_control());
    scheme_ok && clean && uri.len() <= 2048
}

fn check_redirect_uri(field: &'static str, uri: &str) -> Result<(), StoreError> {
    if is_absolute_uri(uri) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            format!("`{uri}` is not an absolute URI without a fragment"),
        ))
    }
}

/// RFC 6749 §3.3 scope tokens: %x21 / %x23-5B / %x5D-7E.
fn check_scope(scope: &str) -> Result<(), StoreError> {
    let valid = !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
    if valid {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "scopes",
            format!("`{scope}` is not a scope token"),
        ))
    }
}

fn validate(c: &Client) -> Result<(), StoreError> {
    check_id("id", &c.id)?;
    if let Some(app_id) = &c.app_id {
        check_id("app_id", app_id)?;
    }
    if c.grants.is_empty() {
        return Err(StoreError::invalid("grants", "name at least one grant"));
    }
    if c.public && c.allows(GrantType::ClientCredentials) {
        return Err(StoreError::invalid(
            "grants",
            "a public client cannot use client_credentials (it has no secret)",
        ));
    }
    let redirecting = c.allows(GrantType::AuthorizationCode) || c.allows(GrantType::Implicit);
    if redirecting && c.redirect_uris.is_empty() {
        return Err(StoreError::invalid(
            "redirect_uris",
            "authorization_code and implicit need at least one redirect URI",
        ));
    }
    c.redirect_uris
        .iter()
        .try_for_each(|u| check_redirect_uri("redirect_uris", u))?;
    c.post_logout_redirect_uris
        .iter()
        .try_for_each(|u| check_redirect_uri("post_logout_redirect_uris", u))?;
    // ID tokens are signed with the keys the gateway keeps for RS256 and ES256 only.
    if let Some(alg @ KeyAlg::EdDsa) = c.id_token_alg {
        return Err(StoreError::invalid(
            "id_token_alg",
            format!("`{}` is not one of RS256, ES256", alg.as_str()),
        ));
    }
    c.resources
        .iter()
        .try_for_each(|u| check_redirect_uri("resources", u))?;
    if let Some(default) = &c.default_resource
        && !c.resources.contains(default)
    {
        return Err(StoreError::invalid(
            "default_resource",
            format!("`{default}` is not one of the client's resources"),
        ));
    }
    c.scopes.iter().try_for_each(|s| check_scope(s))?;
    if let Some(name) = &c.display_name
        && (name.len() > 256 || name.chars().any(char::is_control))
    {
        return Err(StoreError::invalid(
            "display_name",
            "must be at most 256 bytes without control characters",
        ));
    }
    Ok(())
}

fn check_secret(secret: &str) -> Result<(), StoreError> {
    if secret.len() < MIN_SECRET_BYTES || secret.len() > 512 {
        return Err(StoreError::invalid(
            "secret",
            format!("must be {MIN_SECRET_BYTES} to 512 bytes"),
        ));
    }
    Ok(())
}

fn dedup<T: PartialEq + Clone>(items: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

fn ttl_secs(ttl: Option<Duration>) -> Option<i64> {
    ttl.map(secs)
}

impl Store {
    /// Registers a client. A confidential client gets `secret` (validated) or, if `None`, a
    /// generated one; the plaintext is returned once and only its digest is stored.
    pub async fn add_client(
        &self,
        new: NewClient,
        secret: Option<&str>,
        now: i64,
    ) -> Result<(Client, Option<String>), StoreError> {
        let client = Client {
            id: new.id,
            app_id: new.app_id,
            display_name: new.display_name,
            public: new.public,
            grants: dedup(&new.grants),
            redirect_uris: dedup(&new.redirect_uris),
            scopes: dedup(&new.scopes),
            access_ttl: new.access_ttl,
            refresh_ttl: new.refresh_ttl,
            post_logout_redirect_uris: dedup(&new.post_logout_redirect_uris),
            id_token_alg: new.id_token_alg,
            resources: dedup(&new.resources),
            default_resource: new.default_resource,
            created_at: now,
            updated_at: now,
        };
        validate(&client)?;
        let secret = match (client.public, secret) {
            (true, Some(_)) => {
                return Err(StoreError::invalid(
                    "secret",
                    "a public client has no secret",
                ));
            }
            (true, None) => None,
            (false, Some(s)) => {
                check_secret(s)?;
                Some(s.to_owned())
            }
            (false, None) => Some(new_token()?),
        };
        let mut tx = self.db.begin().await?;
        if let Some(app_id) = &client.app_id {
            self.check_app_id_free(&mut tx, app_id, &client.id).await?;
        }
        let inserted = tx
            .execute(
                q(
                    "INSERT INTO clients (id, app_id, display_name, secret_digest, public, grants,
                     redirect_uris, scopes, access_ttl, refresh_ttl, created_at, updated_at,
                     post_logout_redirect_uris, id_token_alg, resources, default_resource)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14,
                           $15)
                   ON CONFLICT (id) DO NOTHING",
                )
                .text(client.id.clone())
                .opt_text(client.app_id.clone())
                .opt_text(client.display_name.clone())
                .opt_bytes(secret.as_deref().map(digest_of))
                .bool(client.public)
                .text(grants_text(&client.grants))
                .text(client.redirect_uris.join(" "))
                .text(client.scopes.join(" "))
                .opt_int(ttl_secs(client.access_ttl))
                .opt_int(ttl_secs(client.refresh_ttl))
                .int(now)
                .text(client.post_logout_redirect_uris.join(" "))
                .opt_text(client.id_token_alg.map(KeyAlg::as_str))
                .text(client.resources.join(" "))
                .opt_text(client.default_resource.clone()),
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::conflict(format!("client `{}`", client.id)));
        }
        tx.commit().await?;
        Ok((client, secret))
    }

    /// App ids share no table constraint with client ids; a unique index covers app ids, and
    /// this check turns a clash into a readable conflict.
    async fn check_app_id_free(
        &self,
        tx: &mut super::db::Tx,
        app_id: &str,
        client_id: &str,
    ) -> Result<(), StoreError> {
        let taken = tx
            .fetch_optional(
                q("SELECT id FROM clients WHERE app_id = $1 AND id <> $2")
                    .text(app_id)
                    .text(client_id),
            )
            .await?;
        match taken {
            Some(_) => Err(StoreError::conflict(format!("app id `{app_id}`"))),
            None => Ok(()),
        }
    }

    /// The client `id`; [`StoreError::NotFound`] when there is none.
    pub async fn client(&self, id: &str) -> Result<Client, StoreError> {
        let row = self
            .db
            .fetch_optional(q("SELECT * FROM clients WHERE id = $1").text(id))
            .await?
            .ok_or_else(|| StoreError::not_found(format!("client `{id}`")))?;
        client_from_row(&row)
    }

    /// The client whose `app_id` alias is `app_id`.
    pub async fn client_by_app_id(&self, app_id: &str) -> Result<Client, StoreError> {
        let row = self
            .db
            .fetch_optional(q("SELECT * FROM clients WHERE app_id = $1").text(app_id))
            .await?
            .ok_or_else(|| StoreError::not_found(format!("app `{app_id}`")))?;
        client_from_row(&row)
    }

    /// Every client, by id.
    pub async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows = self
            .db
            .fetch_all(q("SELECT * FROM clients ORDER BY id"))
            .await?;
        rows.iter().map(client_from_row).collect()
    }

    /// How many clients have at least one RFC 8707 resource registered (`authgate check`
    /// warns when resource indicators are off but clients rely on them).
    pub async fn clients_with_resources(&self) -> Result<usize, StoreError> {
        let n = match self
            .db
            .fetch_optional(q("SELECT COUNT(*) AS n FROM clients WHERE resources <> ''"))
            .await?
        {
            Some(row) => row.get::<i64>("n")?,
            None => 0,
        };
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Applies `patch` and validates the result as `add_client` does, in one transaction (the
    /// `app_id` check included); returns the client as stored. Tokens already issued are unaffected.
    pub async fn update_client(
        &self,
        id: &str,
        patch: ClientPatch,
        now: i64,
    ) -> Result<Client, StoreError> {
        let mut client = self.client(id).await?;
        if let Some(v) = patch.app_id {
            client.app_id = v;
        }
        if let Some(v) = patch.display_name {
            client.display_name = v;
        }
        if let Some(v) = patch.grants {
            client.grants = dedup(&v);
        }
        if let Some(v) = patch.redirect_uris {
            client.redirect_uris = dedup(&v);
        }
        if let Some(v) = patch.scopes {
            client.scopes = dedup(&v);
        }
        if let Some(v) = patch.access_ttl {
            client.access_ttl = v;
        }
        if let Some(v) = patch.refresh_ttl {
            client.refresh_ttl = v;
        }
        if let Some(v) = patch.post_logout_redirect_uris {
            client.post_logout_redirect_uris = dedup(&v);
        }
        if let Some(v) = patch.id_token_alg {
            client.id_token_alg = v;
        }
        if let Some(v) = patch.resources {
            client.resources = dedup(&v);
        }
        if let Some(v) = patch.default_resource {
            client.default_resource = v;
        }
        client.updated_at = now;
        validate(&client)?;
        let mut tx = self.db.begin().await?;
        if let Some(app_id) = &client.app_id {
            self.check_app_id_free(&mut tx, app_id, id).await?;
        }
        let updated = tx
            .execute(
                q(
                    "UPDATE clients SET app_id = $2, display_name = $3, grants = $4,
                     redirect_uris = $5, scopes = $6, access_ttl = $7, refresh_ttl = $8,
                     updated_at = $9, post_logout_redirect_uris = $10, id_token_alg = $11,
                     resources = $12, default_resource = $13
                   WHERE id = $1",
                )
                .text(id)
                .opt_text(client.app_id.clone())
                .opt_text(client.display_name.clone())
                .text(grants_text(&client.grants))
                .text(client.redirect_uris.join(" "))
                .text(client.scopes.join(" "))
                .opt_int(ttl_secs(client.access_ttl))
                .opt_int(ttl_secs(client.refresh_ttl))
                .int(now)
                .text(client.post_logout_redirect_uris.join(" "))
                .opt_text(client.id_token_alg.map(KeyAlg::as_str))
                .text(client.resources.join(" "))
                .opt_text(client.default_resource.clone()),
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::not_found(format!("client `{id}`")));
        }
        tx.commit().await?;
        Ok(client)
    }

    /// Removes a client and, with it, its refresh tokens and codes.
    pub async fn remove_client(&self, id: &str) -> Result<(), StoreError> {
        let removed = self
            .db
            .execute(q("DELETE FROM clients WHERE id = $1").text(id))
            .await?;
        if removed == 0 {
            return Err(StoreError::not_found(format!("client `{id}`")));
        }
        Ok(())
    }

    /// Replaces a confidential client's secret (`None`: generate one); returns it, once.
    pub async fn rotate_client_secret(
        &self,
        id: &str,
        secret: Option<&str>,
        now: i64,
    ) -> Result<String, StoreError> {
        let client = self.client(id).await?;
        if client.public {
            return Err(StoreError::invalid(
                "secret",
                "a public client has no secret",
            ));
        }
        let secret = match secret {
            Some(s) => {
                check_secret(s)?;
                s.to_owned()
            }
            None => new_token()?,
        };
        let updated = self
            .db
            .execute(
                q("UPDATE clients SET secret_digest = $1, updated_at = $2 WHERE id = $3")
                    .bytes(digest_of(&secret))
                    .int(now)
                    .text(id),
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::not_found(format!("client `{id}`")));
        }
        Ok(secret)
    }

    /// Authenticates a client: a confidential client must present its secret (compared in
    /// constant time); a public client must present none (an empty one counts as none).
    /// Every failure is the same [`StoreError::BadClientCredentials`].
    pub async fn verify_client(
        &self,
        id: &str,
        secret: Option<&str>,
    ) -> Result<Client, StoreError> {
        self.stored_client(id).await?.verify(secret)
    }

    /// The client `id` as stored, to check a secret against with [`StoredClient::verify`].
    pub async fn stored_client(&self, id: &str) -> Result<StoredClient, StoreError> {
        let row = self
            .db
            .fetch_optional(q("SELECT * FROM clients WHERE id = $1").text(id))
            .await?;
        StoredClient::from_row(row.as_ref())
    }

    /// [`Store::stored_client`] and [`Store::failure_counts`] of `keys` in one query: what
    /// client authentication under the shared back-off reads before it decides.
    pub async fn stored_client_and_failures(
        &self,
        id: &str,
        keys: &[String; 3],
    ) -> Result<(StoredClient, [Option<FailureCount>; 3]), StoreError> {
        let rows = self
            .db
            .fetch_all(
                q(
                    "SELECT clients.*, login_failures.key AS failure_key, failures, last_at
                   FROM (SELECT 1 AS one) AS one
                   LEFT JOIN clients ON clients.id = $1
                   LEFT JOIN login_failures ON login_failures.key IN ($2, $3, $4)",
                )
                .text(id)
                .text(keys[0].clone())
                .text(keys[1].clone())
                .text(keys[2].clone()),
            )
            .await?;
        let client = StoredClient::from_row(rows.first())?;
        let counts = super::backoff::counts_from_rows(&rows, "failure_key", keys)?;
        Ok((client, counts))
    }
}

/// A client as stored, with its secret's digest (never shown: no `Debug`), or the absence of
/// one: what a presented secret is checked against.
pub struct StoredClient(Option<(Client, Option<Vec<u8>>)>);

impl StoredClient {
    /// From a `clients` row (its columns may be NULL: a left join found no client).
    fn from_row(row: Option<&Row>) -> Result<StoredClient, StoreError> {
        let Some(row) = row else {
            return Ok(StoredClient(None));
        };
        if row.get::<Option<String>>("id")?.is_none() {
            return Ok(StoredClient(None));
        }
        let client = client_from_row(row)?;
        let stored: Option<Vec<u8>> = row.get("secret_digest")?;
        Ok(StoredClient(Some((client, stored))))
    }

    /// The client, if `secret` authenticates it: a confidential client's must match (in
    /// constant time), a public client must present none (an empty one counts as none). Every
    /// failure, an unknown client included, is the same [`StoreError::BadClientCredentials`].
    pub fn verify(self, secret: Option<&str>) -> Result<Client, StoreError> {
        let secret = secret.filter(|s| !s.is_empty());
        let Some((client, stored)) = self.0 else {
            return Err(StoreError::BadClientCredentials);
        };
        let ok = match (client.public, secret, stored) {
            (true, None, _) => true,
            (false, Some(presented), Some(stored)) => digest_matches(presented, &stored),
            _ => false,
        };
        if ok {
            Ok(client)
        } else {
            Err(StoreError::BadClientCredentials)
        }
    }
}

fn grants_text(grants: &[GrantType]) -> String {
    grants
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_absolute_without_fragment() {
        assert!(check_redirect_uri("redirect_uris", "https://app.example.com/cb").is_ok());
        assert!(check_redirect_uri("redirect_uris", "com.example.app:/oauth2redirect").is_ok());
        assert!(check_redirect_uri("redirect_uris", "http://127.0.0.1:8080/cb?x=1").is_ok());
        assert!(check_redirect_uri("redirect_uris", "/relative").is_err());
        assert!(check_redirect_uri("redirect_uris", "https://a.example/cb#frag").is_err());
        assert!(check_redirect_uri("redirect_uris", "https://a.example/c b").is_err());
    }

    #[test]
    fn scopes_are_rfc6749_tokens() {
        assert!(check_scope("read:users").is_ok());
        assert!(check_scope("a\"b").is_err());
        assert!(check_scope("a\\b").is_err());
        assert!(check_scope("").is_err());
    }
}
