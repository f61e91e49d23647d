-- A new passkey registration replaces the person's waiting one: found by person, not by
-- reading every ceremony. (Also what `on delete cascade` from users looks up.)
create index webauthn_ceremonies_user on webauthn_ceremonies (user_id, kind);
