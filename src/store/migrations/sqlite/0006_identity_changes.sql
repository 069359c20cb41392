-- When a user's group, roles or admin flag last changed (Unix seconds). Users with a value are
-- mirrored into every instance's memory, so the proxy path uses their current group and roles
-- instead of the ones their tokens were issued with (a change does not sign anybody out).
ALTER TABLE users ADD COLUMN identity_changed_at INTEGER;
CREATE INDEX users_identity_changed ON users (identity_changed_at) WHERE identity_changed_at IS NOT NULL;
