//! Human passwords: Argon2id with the argon2 crate's defaults (the OWASP parameters m=19456 KiB,
//! t=2, p=1), and verification of legacy bcrypt hashes (`$2y$`/`$2b$`/`$2a$`, as PHP's
//! `password_hash` and Laravel write them) that are upgraded on the next good login.
//!
//! Every hash and verification runs on tokio's blocking pool behind a semaphore: one Argon2
//! computation takes ~60 ms of a core and ~19 MiB, so on the async workers it would stall every
//! request, and unbounded it would let a burst of logins exhaust memory.

use std::sync::Arc;

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::Semaphore;

use super::StoreError;

/// Hashes written now start with this; any other Argon2 parameters get rehashed on login.
const CURRENT_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

/// Verified when the login name is unknown, so that costs what a wrong password costs (same
/// algorithm and parameters; the password behind it is random and was thrown away).
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$6Pt1N0d0bmSHv3E1gItIlw$Cxw2/sZiKZCgaY5Tr8iYf5UfdmXm6mXcyBvP1v0VpBg";

/// bcrypt above this cost is refused: a planted `$2y$31$` hash would burn minutes per attempt.
const MAX_BCRYPT_COST: u32 = 16;

pub(crate) const MIN_PASSWORD_BYTES: usize = 8;
pub(crate) const MAX_PASSWORD_BYTES: usize = 1024;

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Correct. `upgrade`: the hash is bcrypt or older Argon2 parameters; store a new one.
    Match {
        upgrade: bool,
    },
    Mismatch,
}

#[derive(Clone)]
pub(crate) struct Passwords {
    permits: Arc<Semaphore>,
}

impl Passwords {
    pub(crate) fn new(concurrency: usize) -> Self {
        Passwords {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// An Argon2id PHC string for a new password (which must pass [`check_new`]).
    pub(crate) async fn hash(&self, password: &str) -> Result<String, StoreError> {
        check_new(password)?;
        let password = password.as_bytes().to_vec();
        self.blocking(move || {
            Argon2::default()
                .hash_password(&password)
                .map(|h| h.to_string())
                .map_err(|e| StoreError::Hashing(e.into()))
        })
        .await?
    }

    /// Checks `password` against `stored`; `None` (no such user, or no password set) costs the
    /// same as a wrong password and is one.
    pub(crate) async fn verify(
        &self,
        password: &str,
        stored: Option<String>,
    ) -> Result<Verdict, StoreError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Ok(Verdict::Mismatch);
        }
        let password = password.as_bytes().to_vec();
        self.blocking(move || match stored {
            Some(hash) => verify_blocking(&password, &hash),
            None => {
                let _ = verify_blocking(&password, DUMMY_HASH);
                Verdict::Mismatch
            }
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| StoreError::Hashing(e.into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| StoreError::Hashing(e.into()))
    }
}

/// A new password must be 8 to 1024 bytes.
pub(crate) fn check_new(password: &str) -> Result<(), StoreError> {
    if password.len() < MIN_PASSWORD_BYTES {
        return Err(StoreError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_BYTES} bytes"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(StoreError::invalid(
            "password",
            format!("must be at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn verify_blocking(password: &[u8], stored: &str) -> Verdict {
    if stored.starts_with("$argon2") {
        match Argon2::default().verify_password(password, stored) {
            Ok(()) => Verdict::Match {
                upgrade: !stored.starts_with(CURRENT_PREFIX),
            },
            Err(_) => Verdict::Mismatch,
        }
    } else if is_bcrypt(stored) {
        let cost_ok = bcrypt_cost(stored).is_some_and(|c| c <= MAX_BCRYPT_COST);
        match cost_ok && bcrypt::verify(password, stored).unwrap_or(false) {
            true => Verdict::Match { upgrade: true },
            false => Verdict::Mismatch,
        }
    } else {
        tracing::warn!("a stored password hash has an unknown format; the login is refused");
        let _ = Argon2::default().verify_password(password, DUMMY_HASH);
        Verdict::Mismatch
    }
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p))
}

/// `$2y$10$…` → 10.
fn bcrypt_cost(hash: &str) -> Option<u32> {
    hash.get(4..6)?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// From the PHP manual's `password_verify` example: PHP's `password_hash("rasmuslerdorf",
    /// PASSWORD_DEFAULT)`.
    const PHP_BCRYPT: &str = "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a";

    #[tokio::test]
    async fn php_bcrypt_vector_verifies_and_asks_for_an_upgrade() {
        let passwords = Passwords::new(2);
        let verdict = passwords
            .verify("rasmuslerdorf", Some(PHP_BCRYPT.to_owned()))
            .await
            .unwrap();
        assert_eq!(verdict, Verdict::Match { upgrade: true });
        let wrong = passwords
            .verify("rasmuslerdorF", Some(PHP_BCRYPT.to_owned()))
            .await
            .unwrap();
        assert_eq!(wrong, Verdict::Mismatch);
    }

    #[tokio::test]
    async fn argon2id_with_owasp_parameters_round_trips() {
        let passwords = Passwords::new(2);
        let hash = passwords.hash("correct horse").await.unwrap();
        assert!(hash.starts_with(CURRENT_PREFIX), "{hash}");
        let ok = passwords.verify("correct horse", Some(hash.clone()));
        assert_eq!(ok.await.unwrap(), Verdict::Match { upgrade: false });
        let bad = passwords.verify("correct horsE", Some(hash));
        assert_eq!(bad.await.unwrap(), Verdict::Mismatch);
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_costs() {
        assert!(DUMMY_HASH.starts_with(CURRENT_PREFIX));
        assert!(argon2::PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn absurd_bcrypt_costs_are_refused_without_computing() {
        let planted = "$2y$31$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a";
        assert_eq!(bcrypt_cost(planted), Some(31));
        assert_eq!(
            verify_blocking(b"rasmuslerdorf", planted),
            Verdict::Mismatch
        );
    }

    #[test]
    fn new_passwords_have_bounds() {
        assert!(check_new("short").is_err());
        assert!(check_new("long enough").is_ok());
        assert!(check_new(&"x".repeat(1025)).is_err());
    }
}
