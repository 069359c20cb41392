-- Login back-off counts shared by the instances of a cluster (one instance keeps them in
-- memory): failed attempts per (account, source), per source and per account, and when the
-- last one happened (Unix milliseconds).
CREATE TABLE login_failures (
    key      TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    last_at  BIGINT NOT NULL
);
CREATE INDEX login_failures_last ON login_failures (last_at);
