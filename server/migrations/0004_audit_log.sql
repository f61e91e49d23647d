-- Who did what to which account, and when. Never a password or a token.
create table audit_log (
    id text primary key,
    at bigint not null,
    action text not null,
    -- The person acting (absent for failed logins of unknown accounts).
    actor_id text,
    -- The account acted upon.
    subject_id text,
    ip text,
    detail text
);

create index audit_log_at on audit_log (at);
