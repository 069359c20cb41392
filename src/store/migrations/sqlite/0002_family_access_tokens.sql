-- The access tokens issued with each refresh-token family, so that revoking the family (RFC
-- 7009 revocation, refresh-token reuse, code replay) also denies its access tokens.
CREATE TABLE family_access_tokens (
    family_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (family_id, jti)
);
CREATE INDEX family_access_tokens_expiry ON family_access_tokens (expires_at);
