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
    pub client_id: Option<String>,
    pub source_addr: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

impl AuditEvent {
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

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn client(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    pub fn source(mut self, addr: impl Into<String>) -> Self {
        self.source_addr = Some(addr.into());
        self
    }

    pub fn request(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
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

impl Store {
    /// Appends an event; returns its id.
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
        row.get("id")
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
