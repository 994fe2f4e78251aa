-- The event store is append-only: recorded events and snapshots are never
-- changed or removed, except by the tables' owner (migrations, an operator's
-- deliberate repair).
--
-- Privileges alone cannot say this. The eventsourcing library takes
-- LOCK TABLE ledger_events IN EXCLUSIVE MODE on every append, and PostgreSQL
-- allows that lock only to a role with UPDATE, DELETE or TRUNCATE on the table,
-- so the writer role must hold UPDATE. These triggers take the change back
-- away: an UPDATE, DELETE or TRUNCATE by anyone who is not (a member of) the
-- table's owner fails with insufficient_privilege. Superusers count as owners.
--
-- Applied by `make migrate` on every run (schema/grant.py); re-runnable.
CREATE OR REPLACE FUNCTION public.ledger_refuse_history_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'USAGE') THEN
        IF TG_LEVEL = 'STATEMENT' THEN
            RETURN NULL;
        ELSIF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% on % refused: the event store is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Only the owner of the table (the role make migrate runs as) may change history.';
END
$$;

DO $$
DECLARE
    t text;
    spec text;
    trigger_name text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ledger_events', 'ledger_snapshots'] LOOP
        -- name suffix : events : level
        FOREACH spec IN ARRAY ARRAY['rows:UPDATE OR DELETE:ROW', 'truncate:TRUNCATE:STATEMENT'] LOOP
            trigger_name := t || '_append_only_' || split_part(spec, ':', 1);
            -- Created once: CREATE OR REPLACE TRIGGER would lock the table on every run.
            IF NOT EXISTS (
                SELECT 1 FROM pg_trigger
                WHERE tgrelid = format('public.%I', t)::regclass AND tgname = trigger_name
            ) THEN
                EXECUTE format(
                    'CREATE TRIGGER %I BEFORE %s ON public.%I FOR EACH %s'
                    ' EXECUTE FUNCTION public.ledger_refuse_history_change()',
                    trigger_name, split_part(spec, ':', 2), t, split_part(spec, ':', 3));
            END IF;
        END LOOP;
    END LOOP;
END
$$;
