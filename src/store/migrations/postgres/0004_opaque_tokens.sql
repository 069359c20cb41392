-- Opaque reference access tokens (the `mobile` dialect's default format): the token's SHA-256
-- and the claims a JWT would carry. Revocation goes through the same jti denylist and per-user
-- not-before as JWTs.
CREATE TABLE opaque_tokens (
    token_hash BYTEA PRIMARY KEY,
    jti        TEXT NOT NULL UNIQUE,
    subject    TEXT NOT NULL,
    group_id   BIGINT,
    roles      TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    actor      TEXT,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX opaque_tokens_expiry ON opaque_tokens (expires_at);
