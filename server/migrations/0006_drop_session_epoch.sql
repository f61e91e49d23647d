-- Access tokens now end with their session (its id is checked on every request), so the
-- per-person epoch in whole seconds, which let a token of the very second of a change
-- survive, is no longer read.
alter table users drop column session_epoch;
