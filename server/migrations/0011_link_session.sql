-- The session (refresh family) of the browser that began a link flow: the callback links
-- the identity only while that session is still live. An account's address claimed by its
-- owner since (which ends the claimed account's sessions), or a sign-out, stops the link.
alter table oidc_flows add column link_family_id text;
