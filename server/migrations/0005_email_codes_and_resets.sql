-- Email verification: at most one pending code a person, stored as a keyed digest.
create table email_codes (
    user_id text primary key references users (id) on delete cascade,
    code_digest text not null,
    expires_at bigint not null,
    -- Tries made against this code, counted before each is judged.
    attempts bigint not null default 0,
    sent_at bigint not null,
    -- Tries across codes in a day from day_started: a new code does not renew them.
    day_started bigint not null,
    day_attempts bigint not null default 0
);

-- Password reset links: single use, stored only as SHA-256 of the 256-bit token.
create table password_resets (
    token_hash text primary key,
    user_id text not null references users (id) on delete cascade,
    created_at bigint not null,
    expires_at bigint not null,
    used_at bigint
);

create index password_resets_user on password_resets (user_id);
