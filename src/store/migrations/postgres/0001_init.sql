-- authgate schema, version 1 (PostgreSQL). Times are Unix seconds.

CREATE TABLE users (
    id                      BIGINT PRIMARY KEY,
    account                 TEXT NOT NULL,
    phone                   TEXT,
    email                   TEXT,
    password_hash           TEXT,
    group_id                BIGINT NOT NULL DEFAULT 0,
    roles                   TEXT NOT NULL DEFAULT '',
    disabled                BOOLEAN NOT NULL DEFAULT FALSE,
    display_name            TEXT,
    image_small             TEXT,
    image_medium            TEXT,
    image_large             TEXT,
    premium                 BOOLEAN NOT NULL DEFAULT FALSE,
    content_restriction     BIGINT NOT NULL DEFAULT 0,
    mail_verified           BOOLEAN NOT NULL DEFAULT FALSE,
    policy_agreement_needed BOOLEAN NOT NULL DEFAULT FALSE,
    not_before              BIGINT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);

-- Every login name (account, phone, e-mail) of every user, in one namespace: a name resolves
-- to at most one user.
CREATE TABLE login_names (
    name    TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind    TEXT NOT NULL CHECK (kind IN ('account', 'phone', 'email')),
    UNIQUE (user_id, kind)
);

CREATE TABLE clients (
    id            TEXT PRIMARY KEY,
    app_id        TEXT UNIQUE,
    display_name  TEXT,
    secret_digest BYTEA,
    public        BOOLEAN NOT NULL,
    grants        TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    access_ttl    BIGINT,
    refresh_ttl   BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid              TEXT PRIMARY KEY,
    alg              TEXT NOT NULL,
    key_bits         BIGINT,
    state            TEXT NOT NULL
                     CHECK (state IN ('pending', 'active', 'retiring', 'retired', 'revoked')),
    public_jwk       TEXT NOT NULL,
    public_spki      BYTEA NOT NULL,
    private_sealed   BYTEA NOT NULL,
    created_at       BIGINT NOT NULL,
    activate_after   BIGINT,
    state_changed_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX signing_keys_one_active_per_alg ON signing_keys (alg) WHERE state = 'active';

CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    family_id  TEXT NOT NULL,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

CREATE TABLE auth_codes (
    code_hash          BYTEA PRIMARY KEY,
    client_id          TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id            BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri       TEXT,
    scope              TEXT NOT NULL,
    pkce_challenge     TEXT,
    pkce_method        TEXT,
    issued_at          BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    used_at            BIGINT,
    replayed_at        BIGINT,
    issued_family      TEXT,
    issued_jti         TEXT,
    issued_jti_expires BIGINT
);
CREATE INDEX auth_codes_expiry ON auth_codes (expires_at);

CREATE TABLE denied_jtis (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    action      TEXT NOT NULL,
    actor       TEXT,
    subject     TEXT,
    client_id   TEXT,
    source_addr TEXT,
    request_id  TEXT,
    details     TEXT NOT NULL DEFAULT '{}'
);
CREATE FUNCTION authgate_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION authgate_audit_log_append_only();

-- Small facts about the store itself (e.g. the key-secret check value).
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
