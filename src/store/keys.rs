//! Signing keys and their life cycle:
//!
//! | from \ action | activate | retire   | revoke  |
//! |---------------|----------|----------|---------|
//! | pending       | active   | retired  | revoked |
//! | active        | —        | retiring | revoked |
//! | retiring      | —        | retired  | revoked |
//! | retired       | —        | —        | revoked |
//!
//! `pending` keys are published (verifiers' caches learn them) but do not sign; `active` signs
//! (at most one per algorithm — activating demotes the previous one to `retiring`, and a partial
//! unique index enforces it); `retiring` verifies only; `retired` is gone from the key set;
//! `revoked` is the emergency stop: tokens signed by it fail at once.

mod material;

/// A secret shared with another service: the environment variable `env` (32+ characters), or
/// else the file `file`, generated (mode 0600, 256 random bits) on first use. Without a file
/// (a PostgreSQL store: every instance must share it) the variable is required.
pub fn shared_secret(env: &str, file: Option<&std::path::Path>) -> Result<Vec<u8>, StoreError> {
    match (std::env::var(env), file) {
        (Ok(value), _) if value.trim().len() >= 32 => Ok(value.trim().as_bytes().to_vec()),
        (Ok(value), _) if !value.trim().is_empty() => {
            Err(StoreError::KeySecret(KeySecretError::TooShort {
                env: env.to_owned(),
            }))
        }
        (_, Some(file)) => material::secret_file(file),
        (_, None) => Err(StoreError::KeySecret(KeySecretError::Unset {
            env: env.to_owned(),
        })),
    }
}

use super::db::{Row, q};
use super::{KeySecretError, Store, StoreError};

pub(crate) use material::{Sealer, load_secret};

/// The algorithm a signing key is for; each has at most one active key at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlg {
    /// ECDSA P-256 with SHA-256: our default for every token.
    Es256,
    /// Ed25519.
    EdDsa,
    /// RSA PKCS#1 v1.5 with SHA-256: the `passport` dialect's tokens (size in `bits`).
    Rs256,
}

impl KeyAlg {
    /// The JOSE name (`ES256`, `EdDSA`, `RS256`), as in `alg` headers and JWKs.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlg::Es256 => "ES256",
            KeyAlg::EdDsa => "EdDSA",
            KeyAlg::Rs256 => "RS256",
        }
    }

    /// `ES256`, `EdDSA` or `RS256`, case-insensitively.
    pub fn parse(text: &str) -> Result<KeyAlg, StoreError> {
        match text.to_ascii_uppercase().as_str() {
            "ES256" => Ok(KeyAlg::Es256),
            "EDDSA" => Ok(KeyAlg::EdDsa),
            "RS256" => Ok(KeyAlg::Rs256),
            _ => Err(StoreError::invalid(
                "alg",
                format!("`{text}` is not one of ES256, EdDSA, RS256"),
            )),
        }
    }
}

/// Where a key is in its life cycle (the table in this module's docs); stored as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published in the key set but not signing yet (verifiers' caches learn it first).
    Pending,
    /// Signs new tokens; at most one per algorithm.
    Active,
    /// No longer signs, still verifies the tokens it signed.
    Retiring,
    /// Gone from the key set: its tokens no longer verify.
    Retired,
    /// The emergency stop: its tokens fail at once; final.
    Revoked,
}

impl KeyState {
    /// The stored and displayed name (`pending`, `active`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
            KeyState::Revoked => "revoked",
        }
    }

    fn parse(text: &str) -> Result<KeyState, StoreError> {
        Ok(match text {
            "pending" => KeyState::Pending,
            "active" => KeyState::Active,
            "retiring" => KeyState::Retiring,
            "retired" => KeyState::Retired,
            "revoked" => KeyState::Revoked,
            _ => {
                return Err(StoreError::invalid(
                    "state",
                    format!("unknown key state `{text}`"),
                ));
            }
        })
    }

    /// Published in the JWKS (verifiers accept tokens signed by it).
    pub fn verifies(self) -> bool {
        matches!(
            self,
            KeyState::Pending | KeyState::Active | KeyState::Retiring
        )
    }

    fn after_retire(self) -> Option<KeyState> {
        match self {
            KeyState::Active => Some(KeyState::Retiring),
            KeyState::Pending | KeyState::Retiring => Some(KeyState::Retired),
            KeyState::Retired | KeyState::Revoked => None,
        }
    }
}

/// A signing key without its private half (see [`Store::key_private_pkcs8`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// What it signs with.
    pub alg: KeyAlg,
    /// RSA modulus size; `None` for EC and EdDSA.
    pub bits: Option<u32>,
    /// Where it is in its life cycle.
    pub state: KeyState,
    /// The public JWK (JSON text with `kid`, `alg`, `use`).
    pub public_jwk: String,
    /// The public key as DER SubjectPublicKeyInfo.
    pub public_spki: Vec<u8>,
    /// When it was generated (Unix seconds).
    pub created_at: i64,
    /// A pending key becomes active at this time ([`Store::activate_due_keys`]).
    pub activate_after: Option<i64>,
    /// When its state last changed (Unix seconds).
    pub state_changed_at: i64,
}

fn key_from_row(row: &Row) -> Result<SigningKey, StoreError> {
    Ok(SigningKey {
        kid: row.get("kid")?,
        alg: KeyAlg::parse(&row.get::<String>("alg")?)?,
        bits: row
            .get::<Option<i64>>("key_bits")?
            .and_then(|b| u32::try_from(b).ok()),
        state: KeyState::parse(&row.get::<String>("state")?)?,
        public_jwk: row.get("public_jwk")?,
        public_spki: row.get("public_spki")?,
        created_at: row.get("created_at")?,
        activate_after: row.get("activate_after")?,
        state_changed_at: row.get("state_changed_at")?,
    })
}

/// A value sealed with the key secret when the store is created; opening it at start tells a
/// wrong secret apart before any key is needed.
const SECRET_CHECK: &str = "key_secret_check";

pub(crate) async fn check_secret(db: &super::db::Pool, sealer: &Sealer) -> Result<(), StoreError> {
    let sealed = sealer.seal(SECRET_CHECK.as_bytes(), b"authgate")?;
    db.execute(
        q("INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .text(SECRET_CHECK)
            .bytes(sealed),
    )
    .await?;
    let row = db
        .fetch_optional(q("SELECT value FROM meta WHERE name = $1").text(SECRET_CHECK))
        .await?
        .ok_or_else(|| StoreError::not_found("key secret check"))?;
    sealer
        .open(SECRET_CHECK.as_bytes(), &row.get::<Vec<u8>>("value")?)
        .map_err(|_| StoreError::KeySecret(KeySecretError::NotThisStores))?;
    Ok(())
}

impl Store {
    /// Generates and stores a new `pending` key. `activate_after`: when
    /// [`Store::activate_due_keys`] may activate it (`None`: only by [`Store::activate_key`]).
    pub async fn add_key(
        &self,
        alg: KeyAlg,
        rsa_bits: Option<u32>,
        activate_after: Option<i64>,
        now: i64,
    ) -> Result<SigningKey, StoreError> {
        let generated = tokio::task::spawn_blocking(move || material::generate(alg, rsa_bits))
            .await
            .map_err(|_| StoreError::Crypto("key generation task failed"))??;
        let sealed = self
            .sealer
            .seal(generated.kid.as_bytes(), &generated.pkcs8)?;
        let inserted = self
            .db
            .execute(
                q(
                    "INSERT INTO signing_keys (kid, alg, key_bits, state, public_jwk, public_spki,
                     private_sealed, created_at, activate_after, state_changed_at)
                   VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $7)
                   ON CONFLICT (kid) DO NOTHING",
                )
                .text(generated.kid.clone())
                .text(alg.as_str())
                .opt_int(generated.bits.map(i64::from))
                .text(generated.jwk.to_string())
                .bytes(generated.spki)
                .bytes(sealed)
                .int(now)
                .opt_int(activate_after),
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::conflict(format!(
                "signing key {}",
                generated.kid
            )));
        }
        self.key(&generated.kid).await
    }

    /// Every key, oldest first.
    pub async fn keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        let rows = self
            .db
            .fetch_all(q(
                "SELECT kid, alg, key_bits, state, public_jwk, public_spki, created_at,
                        activate_after, state_changed_at
                 FROM signing_keys ORDER BY created_at, alg, kid",
            ))
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// The key `kid` (public parts only); [`StoreError::NotFound`] when there is none.
    pub async fn key(&self, kid: &str) -> Result<SigningKey, StoreError> {
        let row = self
            .db
            .fetch_optional(
                q(
                    "SELECT kid, alg, key_bits, state, public_jwk, public_spki, created_at,
                          activate_after, state_changed_at
                   FROM signing_keys WHERE kid = $1",
                )
                .text(kid),
            )
            .await?
            .ok_or_else(|| StoreError::not_found(format!("signing key {kid}")))?;
        key_from_row(&row)
    }

    /// The private key, PKCS#8 DER, decrypted. Only for signing: never log or print it.
    pub async fn key_private_pkcs8(&self, kid: &str) -> Result<Vec<u8>, StoreError> {
        let row = self
            .db
            .fetch_optional(q("SELECT private_sealed FROM signing_keys WHERE kid = $1").text(kid))
            .await?
            .ok_or_else(|| StoreError::not_found(format!("signing key {kid}")))?;
        self.sealer
            .open(kid.as_bytes(), &row.get::<Vec<u8>>("private_sealed")?)
    }

    /// pending → active; the algorithm's previous active key becomes retiring. One transaction.
    pub async fn activate_key(&self, kid: &str, now: i64) -> Result<SigningKey, StoreError> {
        let key = self.key(kid).await?;
        if key.state != KeyState::Pending {
            return Err(state_error(&key, "activate"));
        }
        let mut tx = self.db.begin().await?;
        tx.execute(
            q(
                "UPDATE signing_keys SET state = 'retiring', state_changed_at = $1
               WHERE alg = $2 AND state = 'active' AND kid <> $3",
            )
            .int(now)
            .text(key.alg.as_str())
            .text(kid),
        )
        .await?;
        let activated = tx
            .execute(
                q(
                    "UPDATE signing_keys SET state = 'active', state_changed_at = $1
                   WHERE kid = $2 AND state = 'pending'",
                )
                .int(now)
                .text(kid),
            )
            .await?;
        if activated == 0 {
            // Changed since we read it (another instance activated or revoked it).
            drop(tx);
            return Err(state_error(&self.key(kid).await?, "activate"));
        }
        tx.commit().await?;
        self.key(kid).await
    }

    /// active → retiring, pending/retiring → retired.
    pub async fn retire_key(&self, kid: &str, now: i64) -> Result<SigningKey, StoreError> {
        let key = self.key(kid).await?;
        let next = key
            .state
            .after_retire()
            .ok_or_else(|| state_error(&key, "retire"))?;
        self.move_key(&key, next, now, "retire").await
    }

    /// Any state except revoked → revoked: tokens signed by it stop verifying.
    pub async fn revoke_key(&self, kid: &str, now: i64) -> Result<SigningKey, StoreError> {
        let key = self.key(kid).await?;
        if key.state == KeyState::Revoked {
            return Err(state_error(&key, "revoke"));
        }
        self.move_key(&key, KeyState::Revoked, now, "revoke").await
    }

    async fn move_key(
        &self,
        key: &SigningKey,
        next: KeyState,
        now: i64,
        action: &'static str,
    ) -> Result<SigningKey, StoreError> {
        let moved = self
            .db
            .execute(
                q("UPDATE signing_keys SET state = $1, state_changed_at = $2
                   WHERE kid = $3 AND state = $4")
                .text(next.as_str())
                .int(now)
                .text(key.kid.clone())
                .text(key.state.as_str()),
            )
            .await?;
        if moved == 0 {
            return Err(state_error(&self.key(&key.kid).await?, action));
        }
        self.key(&key.kid).await
    }

    /// Activates every pending key whose `activate_after` has passed (oldest first, so of two
    /// due keys of one algorithm the newer ends active). Returns the activated kids. Safe to
    /// run on every instance at once: a key another instance activated first is skipped.
    pub async fn activate_due_keys(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let due = self
            .db
            .fetch_all(
                q("SELECT kid FROM signing_keys
                   WHERE state = 'pending' AND activate_after IS NOT NULL AND activate_after <= $1
                   ORDER BY activate_after, created_at")
                .int(now),
            )
            .await?;
        let mut activated = Vec::new();
        for row in due {
            let kid: String = row.get("kid")?;
            match self.activate_key(&kid, now).await {
                Ok(_) => activated.push(kid),
                Err(StoreError::KeyState { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(activated)
    }
}

fn state_error(key: &SigningKey, action: &'static str) -> StoreError {
    StoreError::KeyState {
        kid: key.kid.clone(),
        state: key.state.as_str(),
        action,
    }
}
