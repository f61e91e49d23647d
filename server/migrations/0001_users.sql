-- Written in the SQL that SQLite and PostgreSQL share, with only the types sqlx's Any
-- driver decodes on both: ids are uuid text, times Unix seconds, flags 0/1 bigints.
create table users (
    id text primary key,
    email text not null,
    -- Lower-cased in Rust (Unicode-aware, identical on both backends); unique, so two
    -- spellings of one address can never be two accounts.
    email_lower text not null constraint users_email_lower_key unique,
    name text not null,
    password_hash text not null,
    role text not null default 'user' check (role in ('user', 'admin')),
    email_verified bigint not null default 0 check (email_verified in (0, 1)),
    active bigint not null default 1 check (active in (0, 1)),
    created_at bigint not null,
    updated_at bigint not null
);
