//! Login back-off counts shared by the instances of a cluster. The policy and its arithmetic
//! are the grant engine's (`grant::throttle`); this is only where the counts live, keyed by
//! the names `grant::throttle::shared_keys` gives. Times are Unix milliseconds.

use super::db::{Row, q};
use super::{Store, StoreError};

/// One count: failures and the time of the last one (Unix milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    /// Failures counted since the last [`Store::clear_failures`].
    pub failures: u32,
    /// When the last failure happened (Unix milliseconds).
    pub last_at: i64,
}

impl Store {
    /// The counts of `keys`, in the same order (`None` where there is none).
    pub async fn failure_counts(
        &self,
        keys: &[String; 3],
    ) -> Result<[Option<FailureCount>; 3], StoreError> {
        let rows = self
            .db
            .fetch_all(
                q("SELECT key, failures, last_at FROM login_failures WHERE key IN ($1, $2, $3)")
                    .text(keys[0].clone())
                    .text(keys[1].clone())
                    .text(keys[2].clone()),
            )
            .await?;
        counts_from_rows(&rows, "key", keys)
    }

    /// One more failure under each of `keys` at `now_ms`; a count whose last failure is older
    /// than `forget_ms` starts over. One statement per key, each atomic on its own row, so
    /// instances counting at once never lose a failure.
    pub async fn count_failure(
        &self,
        keys: &[String; 3],
        now_ms: i64,
        forget_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        for key in keys {
            tx.execute(
                q(
                    "INSERT INTO login_failures (key, failures, last_at) VALUES ($1, 1, $2)
                   ON CONFLICT (key) DO UPDATE SET
                     failures = CASE WHEN login_failures.last_at < $3 THEN 1
                                     ELSE login_failures.failures + 1 END,
                     last_at = $4",
                )
                .text(key.clone())
                .int(now_ms)
                .int(now_ms.saturating_sub(forget_ms))
                .int(now_ms),
            )
            .await?;
        }
        tx.commit().await
    }

    /// Forgets the counts under `keys` (a successful login clears its pair and account).
    pub async fn clear_failures(&self, keys: &[&String]) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        for key in keys {
            tx.execute(q("DELETE FROM login_failures WHERE key = $1").text((*key).clone()))
                .await?;
        }
        tx.commit().await
    }
}

/// The counts of `keys`, in their order, from rows with `failures` and `last_at` whose key is
/// in column `key_column` (NULL in a row a left join found nothing for).
pub(super) fn counts_from_rows(
    rows: &[Row],
    key_column: &str,
    keys: &[String; 3],
) -> Result<[Option<FailureCount>; 3], StoreError> {
    let mut counts = [None; 3];
    for row in rows {
        let Some(key) = row.get::<Option<String>>(key_column)? else {
            continue;
        };
        if let Some(index) = keys.iter().position(|k| *k == key) {
            counts[index] = Some(FailureCount {
                failures: u32::try_from(row.get::<i64>("failures")?).unwrap_or(u32::MAX),
                last_at: row.get("last_at")?,
            });
        }
    }
    Ok(counts)
}
