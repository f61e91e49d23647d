-- A family is one login (a session); its tokens are the refresh chain, stored as hashes.
create table refresh_families (
    id text primary key,
    user_id text not null references users (id) on delete cascade,
    -- Generation of the newest token, the only one that may still rotate.
    generation bigint not null default 0,
    created_at bigint not null,
    last_used_at bigint not null,
    -- Absolute end of the login (AUTH_SESSION_MAX_SECS after it began).
    expires_at bigint not null,
    -- End of the newest token's idle lifetime; past it the family is dead.
    idle_expires_at bigint not null,
    revoked_at bigint,
    revoke_reason text,
    user_agent text,
    ip text
);

create index refresh_families_user_id on refresh_families (user_id);

create table refresh_tokens (
    token_hash text primary key,
    family_id text not null references refresh_families (id) on delete cascade,
    generation bigint not null,
    created_at bigint not null,
    expires_at bigint not null,
    -- Set when the token is consumed by a rotation.
    used_at bigint,
    -- A family can never fork: one token per generation.
    constraint refresh_tokens_family_generation_key unique (family_id, generation)
);
