-- Every replica caches client metadata (services/client-cache.ts) and drops an entry when this channel names it.
-- A trigger, not the application, sends the notification, so every writer is covered: the admin API, the CLI,
-- the bootstrap file, a replica of an older release during a rolling upgrade, or an operator's own SQL.
-- NOTIFY is delivered on commit, and not at all when the transaction rolls back.
CREATE OR REPLACE FUNCTION keryu_notify_client_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    -- An empty payload means "every client".
    PERFORM pg_notify('keryu_clients', '');
    RETURN NULL;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    -- A NOTIFY payload is limited to 8000 bytes: a longer id clears every entry instead.
    PERFORM pg_notify('keryu_clients', CASE WHEN octet_length(OLD.client_id) < 7000 THEN OLD.client_id ELSE '' END);
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.client_id IS DISTINCT FROM OLD.client_id THEN
    PERFORM pg_notify('keryu_clients', CASE WHEN octet_length(NEW.client_id) < 7000 THEN NEW.client_id ELSE '' END);
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER clients_notify_change AFTER UPDATE OR DELETE ON clients FOR EACH ROW EXECUTE FUNCTION keryu_notify_client_change();
--> statement-breakpoint
CREATE TRIGGER clients_notify_truncate AFTER TRUNCATE ON clients FOR EACH STATEMENT EXECUTE FUNCTION keryu_notify_client_change();
