-- A second factor: an authenticator app (TOTP), its recovery codes, and the five-minute
-- tokens that carry a correct password over to the second step of a sign-in.

-- A person's authenticator secret, sealed under the server secret (a copy of the
-- database alone computes no code). While `enabled_at` is null it is pending: set up,
-- not yet confirmed with a first code, and asked for by nothing.
create table totp_secrets (
    user_id text primary key references users (id) on delete cascade,
    secret_sealed text not null,
    created_at bigint not null,
    enabled_at bigint,
    -- The last 30-second step whose code was accepted: a code is accepted once, so only
    -- a later step's code opens anything.
    last_step bigint
);

-- Ten single-use codes for when the authenticator is lost, stored as keyed digests.
create table recovery_codes (
    user_id text not null references users (id) on delete cascade,
    code_digest text not null,
    created_at bigint not null,
    used_at bigint,
    constraint recovery_codes_pkey primary key (user_id, code_digest)
);

-- A sign-in waiting for its second factor (`mfa_token`, stored as SHA-256 of its 256
-- random bits): single use, five minutes, ended by five wrong codes.
create table mfa_challenges (
    token_hash text primary key,
    user_id text not null references users (id) on delete cascade,
    -- How the sign-in began ('password' or a provider id): the session's method.
    method text not null,
    created_at bigint not null,
    expires_at bigint not null,
    failures bigint not null default 0,
    used_at bigint
);

create index mfa_challenges_user on mfa_challenges (user_id);
create index mfa_challenges_expires on mfa_challenges (expires_at);
