-- Upstream OpenID Connect providers (issue 25). A provider identity (its issuer and `sub`) is
-- linked to one local user; `provider` is the configured name it was linked through (the cap
-- on a provider-only user's sessions and tokens is that provider's `max_session`).
CREATE TABLE user_links (
    issuer       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX user_links_user ON user_links (user_id);
-- Sign-ins sent to a provider and not back yet: found by the digest of `state`, bound to the
-- browser by the digest of its pending-sign-in cookie, taken (deleted) by the first callback.
CREATE TABLE provider_logins (
    state_hash   BLOB PRIMARY KEY,
    binding_hash BLOB NOT NULL,
    provider     TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    verifier     TEXT NOT NULL,
    return_to    TEXT NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX provider_logins_expiry ON provider_logins (expires_at);
