-- Browser sessions become listable and revocable one by one (issue 23): a public, non-secret
-- `id` (16 random bytes; never the cookie value or its digest), the time the session was last
-- seen (server-side idle renewal; writes coalesced by the caller) and an index by user.
-- Existing sessions are kept: their id is fresh random hex (a v4 UUID's digits), their
-- last_seen_at is their created_at.
ALTER TABLE login_sessions ADD COLUMN id TEXT;
ALTER TABLE login_sessions ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0;
UPDATE login_sessions
    SET id = replace(gen_random_uuid()::text, '-', ''), last_seen_at = created_at;
ALTER TABLE login_sessions ALTER COLUMN id SET NOT NULL;
CREATE UNIQUE INDEX login_sessions_id ON login_sessions (id);
CREATE INDEX login_sessions_user ON login_sessions (user_id);
