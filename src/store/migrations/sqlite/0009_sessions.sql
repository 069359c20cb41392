-- Browser sessions become listable and revocable one by one (issue 23): a public, non-secret
-- `id` (16 random bytes; never the cookie value or its digest), the time the session was last
-- seen (server-side idle renewal; writes coalesced by the caller) and an index by user.
-- SQLite cannot add a NOT NULL column without a constant default, so the table is rebuilt
-- (nothing references it). Existing sessions are kept: their id is fresh random hex, their
-- last_seen_at is their created_at.
CREATE TABLE login_sessions_v9 (
    token_hash   BLOB PRIMARY KEY,
    id           TEXT NOT NULL,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL DEFAULT 0,
    expires_at   INTEGER NOT NULL
);
INSERT INTO login_sessions_v9 (token_hash, id, user_id, created_at, last_seen_at, expires_at)
    SELECT token_hash, lower(hex(randomblob(16))), user_id, created_at, created_at, expires_at
    FROM login_sessions;
DROP TABLE login_sessions;
ALTER TABLE login_sessions_v9 RENAME TO login_sessions;
CREATE UNIQUE INDEX login_sessions_id ON login_sessions (id);
CREATE INDEX login_sessions_expiry ON login_sessions (expires_at);
CREATE INDEX login_sessions_user ON login_sessions (user_id);
