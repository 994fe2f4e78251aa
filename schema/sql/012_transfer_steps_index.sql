-- migrate: re-runnable
-- The transfer events the saga acts on, by position: a partial index holding
-- only them, so the saga's pass over a stretch of log costs a look at its few
-- transfer events, not a scan of every deposit and withdrawal in between.
-- Its predicate is the saga's own list of wire names
-- (command_service/transfer_saga/log_reading.py, ACTIONABLE_TOPICS); a test
-- holds the two equal, so a new version of either event changes both.
DROP INDEX IF EXISTS ledger_events_transfer_steps;
CREATE INDEX ledger_events_transfer_steps ON ledger_events (notification_id)
    WHERE topic IN ('ledger.TransferRequested.v1', 'ledger.TransferDebited.v1');
