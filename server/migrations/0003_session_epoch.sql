-- When a person's access changed (disabled, role changed, password changed, sessions
-- revoked), as Unix seconds: access tokens issued before it stop working.
alter table users add column session_epoch bigint not null default 0;
