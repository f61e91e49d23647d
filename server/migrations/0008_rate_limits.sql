-- Brute-force limits, shared by every instance on this database: one row a key (an
-- account, an address, or both) with the attempts counted in its current window.
-- Decided and counted in one statement (server/src/db/rate_limits.rs); rows whose
-- window has ended are pruned.
create table rate_limits (
    key text primary key,
    window_ends bigint not null,
    count bigint not null
);

create index rate_limits_window_ends on rate_limits (window_ends);
