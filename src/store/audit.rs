//! The append-only audit log (database triggers refuse UPDATE and DELETE on it).

use super::db::{Row, q};
use super::{Store, StoreError};

/// Something that happened: a login, a failed login, an impersonation, a revocation, a key
/// rotation, an admin CLI action. Never put a password, secret, token or hash in it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Dotted, e.g. `user.add`, `login.failed`, `keys.rotate`.
    pub action: String,
    /// Who did it (`user:42`, `cli:alice`).
    pub actor: Option<String>,
    /// What it was done to (`user:7`, `client:web`, `key:<kid>`).
    pub subject: Option<String>,
    /// The OAuth client involved, if any.
    pub client_id: Option<String>,
    /// The client address the gateway derived (socket peer, or a trusted proxy's word).
    pub source_addr: Option<String>,
    /// The request's `X-Request-Id`, to join the access log.
    pub request_id: Option<String>,
    /// Anything else worth keeping, as a JSON object (empty by default).
    pub details: serde_json::Value,
}

impl AuditEvent {
    /// An event with only its action; the builder methods below add the rest.
    pub fn new(action: impl Into<String>) -> Self {
        AuditEvent {
            action: action.into(),
            actor: None,
            subject: None,
            client_id: None,
            source_addr: None,
            request_id: None,
            details: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// Sets who did it.
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Sets what it was done to.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the OAuth client involved.
    pub fn client(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Sets the client address.
    pub fn source(mut self, addr: impl Into<String>) -> Self {
        self.source_addr = Some(addr.into());
        self
    }

    /// Sets the request id.
    pub fn request(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Replaces the details object.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Which audit records `authgate audit` lists. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Records at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Exactly this subject.
    pub subject: Option<String>,
    /// An action (`token.exchange`) or a family of them (`token` matches `token.*`).
    pub kind: Option<String>,
    /// The newest this many matches.
    pub limit: i64,
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Increases with insertion order (PostgreSQL sequences may leave gaps).
    pub id: i64,
    /// When it was written (Unix seconds).
    pub at: i64,
    /// What was recorded.
    pub event: AuditEvent,
}

fn record_from_row(row: &Row) -> Result<AuditRecord, StoreError> {
    let details: String = row.get("details")?;
    Ok(AuditRecord {
        id: row.get("id")?,
        at: row.get("at")?,
        event: AuditEvent {
            action: row.get("action")?,
            actor: row.get("actor")?,
            subject: row.get("subject")?,
            client_id: row.get("client_id")?,
            source_addr: row.get("source_addr")?,
            request_id: row.get("request_id")?,
            details: serde_json::from_str(&details).unwrap_or(serde_json::Value::String(details)),
        },
    })
}

impl AuditRecord {
    /// One JSON object (the audit file's line format): `id`, `at` (Unix seconds), `action`,
    /// `actor`, `subject`, `client_id`, `source_addr`, `request_id`, `details`.
    pub fn to_json(&self) -> serde_json::Value {
        let e = &self.event;
        serde_json::json!({
            "id": self.id,
            "at": self.at,
            "action": e.action,
            "actor": e.actor,
            "subject": e.subject,
            "client_id": e.client_id,
            "source_addr": e.source_addr,
            "request_id": e.request_id,
            "details": e.details,
        })
    }
}

/// `%` and `_` are LIKE wildcards; `\` escapes them (the `ESCAPE` clause below).
fn like_prefix(kind: &str) -> String {
    let mut pattern = String::with_capacity(kind.len() + 2);
    for c in kind.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str(".%");
    pattern
}

impl Store {
    /// Appends an event; returns its id. With an audit file configured the record is also
    /// appended there; a failure to write it is logged, never fatal (the database has it).
    pub async fn audit(&self, event: &AuditEvent, now: i64) -> Result<i64, StoreError> {
        let row = self
            .db
            .fetch_optional(
                q(
                    "INSERT INTO audit_log (at, action, actor, subject, client_id, source_addr,
                     request_id, details)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                   RETURNING id",
                )
                .int(now)
                .text(event.action.clone())
                .opt_text(event.actor.clone())
                .opt_text(event.subject.clone())
                .opt_text(event.client_id.clone())
                .opt_text(event.source_addr.clone())
                .opt_text(event.request_id.clone())
                .text(event.details.to_string()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("inserted audit record"))?;
        let id = row.get("id")?;
        if let Some(path) = &self.audit_file {
            let record = AuditRecord {
                id,
                at: now,
                event: event.clone(),
            };
            if let Err(error) = append_line(path, &record.to_json().to_string()).await {
                tracing::warn!(path = %path.display(), %error, "cannot append to the audit file");
            }
        }
        Ok(id)
    }

    /// The newest `filter.limit` records matching `filter`, oldest first.
    pub async fn audit_search(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let kind = filter.kind.clone().unwrap_or_default();
        let rows = self
            .db
            .fetch_all(
                q("SELECT * FROM audit_log
                   WHERE at >= $1
                     AND ($2 = '' OR actor = $3)
                     AND ($4 = '' OR subject = $5)
                     AND ($6 = '' OR action = $7 OR action LIKE $8 ESCAPE '\\')
                   ORDER BY id DESC LIMIT $9")
                .int(filter.since.unwrap_or(i64::MIN))
                .text(filter.actor.clone().unwrap_or_default())
                .text(filter.actor.clone().unwrap_or_default())
                .text(filter.subject.clone().unwrap_or_default())
                .text(filter.subject.clone().unwrap_or_default())
                .text(kind.clone())
                .text(kind.clone())
                .text(like_prefix(&kind))
                .int(filter.limit.clamp(1, 100_000)),
            )
            .await?;
        let mut records = rows
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        records.reverse();
        Ok(records)
    }

    /// Newest first, `limit` at a time, before the record `before_id`.
    pub async fn audit_log(
        &self,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = self
            .db
            .fetch_all(
                q("SELECT * FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2")
                    .int(before_id.unwrap_or(i64::MAX))
                    .int(limit.clamp(1, 10_000)),
            )
            .await?;
        rows.iter().map(record_from_row).collect()
    }
}

/// Appends one line (the file is created 0600: audit records name users and addresses).
async fn append_line(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .await?;
    // One write of the whole line: appends from several processes do not interleave.
    file.write_all(format!("{line}\n").as_bytes()).await?;
    file.flush().await
}
