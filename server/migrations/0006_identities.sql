-- Sign-in with identity providers (OpenID Connect).
--
-- A person who signs in only through providers has no password: their
-- `users.password_hash` is the empty string (the column stays `not null`, which SQLite
-- could not change in place).
--
-- An identity is a person's account at a provider: (provider, subject) names it for good
-- (an email can change there, a subject never does). One per provider per account.
create table identities (
    provider text not null,
    subject text not null,
    user_id text not null references users (id) on delete cascade,
    -- The provider's email for the person when the identity was linked, for people to
    -- recognise it; never used to find the account again.
    email text not null,
    linked_at bigint not null,
    constraint identities_pkey primary key (provider, subject),
    constraint identities_user_provider_key unique (user_id, provider)
);

-- A sign-in at a provider in progress: created by the start route, consumed once by the
-- callback. The browser holds only a random flow id in a cookie (stored here hashed); the
-- state, the nonce and the PKCE verifier never leave the server but in the redirect the
-- provider needs.
create table oidc_flows (
    id_hash text primary key,
    provider text not null,
    state text not null,
    nonce text not null,
    pkce_verifier text not null,
    next_path text not null,
    -- Set when the flow links an identity to this signed-in account instead of signing in.
    link_user_id text references users (id) on delete cascade,
    created_at bigint not null,
    expires_at bigint not null,
    used_at bigint
);

-- How a session began: 'password', or the id of the provider it came through.
alter table refresh_families add column method text not null default 'password';

-- A signed-in person's one-time permission to link an identity: the account page asks for
-- it with the access token, then navigates to the start route with it (a navigation
-- carries no access token). Stored hashed; short-lived; used once.
create table oidc_link_tickets (
    ticket_hash text primary key,
    user_id text not null references users (id) on delete cascade,
    expires_at bigint not null,
    used_at bigint
);
