-- Every replica keeps the revocation state of JWT access tokens in memory (services/revoked-token-cache.ts) and
-- adds to it what this channel names: `j <exp> <jti>` for a revoked token, `g <exp> <grant id>` for a revoked grant,
-- exp in seconds since the epoch (when the row may go). A trigger, not the application, sends it, so every writer
-- is covered: the revocation endpoint, the adapter, logout and password reset, an older replica during a rolling
-- upgrade, an operator's own SQL. NOTIFY is delivered on commit, and not at all when the transaction rolls back.
-- A payload is limited to 8000 bytes: a longer id sends an empty payload, which makes every replica forget what it
-- remembered and ask the database again.
CREATE OR REPLACE FUNCTION keryu_notify_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  kind text;
  id text;
BEGIN
  -- Separate branches: a row of one table has no column of the other.
  IF TG_TABLE_NAME = 'oidc_revoked_tokens' THEN
    kind := 'j';
    id := NEW.jti;
  ELSE
    kind := 'g';
    id := NEW.grant_id;
  END IF;
  PERFORM pg_notify('keryu_revocations', CASE
    WHEN octet_length(id) < 7000 THEN kind || ' ' || ceil(extract(epoch FROM NEW.expires_at))::bigint || ' ' || id
    ELSE '' END);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER oidc_revoked_tokens_notify AFTER INSERT OR UPDATE ON oidc_revoked_tokens FOR EACH ROW EXECUTE FUNCTION keryu_notify_revocation();
--> statement-breakpoint
CREATE TRIGGER oidc_revoked_grants_notify AFTER INSERT OR UPDATE ON oidc_revoked_grants FOR EACH ROW EXECUTE FUNCTION keryu_notify_revocation();
