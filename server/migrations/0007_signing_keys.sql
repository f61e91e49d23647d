-- Signing keys of access tokens, shared by every instance on this database.
--
-- A key is published (in /.well-known/jwks.json) from its creation, signs from
-- `signs_from`, and stays published until the tokens it signed have expired: until the
-- next key's `signs_from` plus the access tokens' lifetime. Which key is in which state
-- follows from these times alone (server/src/auth/key_set.rs).
--
-- The private half is sealed under the server secret (AUTH_SECRET_FILE): a copy of the
-- database alone signs nothing.
create table signing_keys (
    kid text primary key,
    -- The Ed25519 public key, base64url.
    public_key text not null,
    sealed_private_key text not null,
    created_at bigint not null,
    signs_from bigint not null
);
