-- Passkeys (WebAuthn discoverable credentials): each signs its person in alone, as both
-- factors (user verification is required).
create table passkeys (
    -- Our id for it, as the API names it.
    id text primary key,
    user_id text not null references users (id) on delete cascade,
    -- The authenticator's credential id, base64url: what a sign-in presents.
    credential_id text not null,
    name text not null,
    -- The public key, its signature counter and flags, as webauthn-rs keeps them (JSON);
    -- no secret: the private key never leaves the authenticator.
    passkey text not null,
    created_at bigint not null,
    last_used_at bigint,
    constraint passkeys_credential_id_key unique (credential_id)
);

create index passkeys_user on passkeys (user_id);

-- A registration or a sign-in ceremony in progress, found again by its challenge (which
-- the browser's signed answer carries), used once, for five minutes. Every instance
-- shares it.
create table webauthn_ceremonies (
    challenge text primary key,
    -- 'register' or 'sign_in'.
    kind text not null,
    -- The person registering (none for a sign-in: the passkey says who).
    user_id text references users (id) on delete cascade,
    -- The name the new passkey gets.
    name text,
    state text not null,
    expires_at bigint not null
);

create index webauthn_ceremonies_expires on webauthn_ceremonies (expires_at);
