-- RFC 8707 resource indicators. A client registers the resources (absolute URIs without a
-- fragment, space-separated) its tokens may be issued for, and optionally the one a request
-- naming none gets (NULL: none). A code carries the resources its authorization request
-- named; a refresh token carries its family's granted resources, copied by every rotation.
-- '': none, or issued before this migration.
ALTER TABLE clients ADD COLUMN resources TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN default_resource TEXT;
ALTER TABLE auth_codes ADD COLUMN resources TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN resources TEXT NOT NULL DEFAULT '';
-- An opaque access token's resources (its `aud`); '': the client id, as before.
ALTER TABLE opaque_tokens ADD COLUMN audiences TEXT NOT NULL DEFAULT '';
