-- authgate schema, version 1 (SQLite). Times are Unix seconds; booleans are 0/1.

CREATE TABLE users (
    id                      INTEGER PRIMARY KEY,
    account                 TEXT NOT NULL,
    phone                   TEXT,
    email                   TEXT,
    password_hash           TEXT,
    group_id                INTEGER NOT NULL DEFAULT 0,
    roles                   TEXT NOT NULL DEFAULT '',
    disabled                BOOLEAN NOT NULL DEFAULT 0,
    display_name            TEXT,
    image_small             TEXT,
    image_medium            TEXT,
    image_large             TEXT,
    premium                 BOOLEAN NOT NULL DEFAULT 0,
    content_restriction     INTEGER NOT NULL DEFAULT 0,
    mail_verified           BOOLEAN NOT NULL DEFAULT 0,
    policy_agreement_needed BOOLEAN NOT NULL DEFAULT 0,
    not_before              INTEGER,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);

-- Every login name (account, phone, e-mail) of every user, in one namespace: a name resolves
-- to at most one user.
CREATE TABLE login_names (
    name    TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind    TEXT NOT NULL CHECK (kind IN ('account', 'phone', 'email')),
    UNIQUE (user_id, kind)
);

CREATE TABLE clients (
    id            TEXT PRIMARY KEY,
    app_id        TEXT UNIQUE,
    display_name  TEXT,
    secret_digest BLOB,
    public        BOOLEAN NOT NULL,
    grants        TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    access_ttl    INTEGER,
    refresh_ttl   INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    kid              TEXT PRIMARY KEY,
    alg              TEXT NOT NULL,
    key_bits         INTEGER,
    state            TEXT NOT NULL
                     CHECK (state IN ('pending', 'active', 'retiring', 'retired', 'revoked')),
    public_jwk       TEXT NOT NULL,
    public_spki      BLOB NOT NULL,
    private_sealed   BLOB NOT NULL,
    created_at       INTEGER NOT NULL,
    activate_after   INTEGER,
    state_changed_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX signing_keys_one_active_per_alg ON signing_keys (alg) WHERE state = 'active';

CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY,
    family_id  TEXT NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

CREATE TABLE auth_codes (
    code_hash          BLOB PRIMARY KEY,
    client_id          TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id            INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri       TEXT,
    scope              TEXT NOT NULL,
    pkce_challenge     TEXT,
    pkce_method        TEXT,
    issued_at          INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    used_at            INTEGER,
    replayed_at        INTEGER,
    issued_family      TEXT,
    issued_jti         TEXT,
    issued_jti_expires INTEGER
);
CREATE INDEX auth_codes_expiry ON auth_codes (expires_at);

CREATE TABLE denied_jtis (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    action      TEXT NOT NULL,
    actor       TEXT,
    subject     TEXT,
    client_id   TEXT,
    source_addr TEXT,
    request_id  TEXT,
    details     TEXT NOT NULL DEFAULT '{}'
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- Small facts about the store itself (e.g. the key-secret check value).
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
