-- Browser login sessions of the authorization page: a person who logged in is not asked again
-- until the session expires, logs out, changes password or is logged out everywhere.
CREATE TABLE login_sessions (
    token_hash BLOB PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX login_sessions_expiry ON login_sessions (expires_at);
