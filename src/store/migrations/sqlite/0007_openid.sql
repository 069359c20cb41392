-- OpenID Connect. A code carries the nonce of its authorization request and the time the
-- person authenticated (Unix seconds), so the ID token issued for it can state both; refresh
-- tokens keep that time through rotation (a refreshed ID token states the original login, not
-- the refresh). NULL: not an OpenID request, or issued before this migration.
ALTER TABLE auth_codes ADD COLUMN nonce TEXT;
ALTER TABLE auth_codes ADD COLUMN auth_time INTEGER;
ALTER TABLE refresh_tokens ADD COLUMN auth_time INTEGER;
-- Where a client may send the browser after logout (space-separated, exact like
-- redirect_uris), and the algorithm of its ID tokens (NULL: the default, RS256).
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN id_token_alg TEXT;
