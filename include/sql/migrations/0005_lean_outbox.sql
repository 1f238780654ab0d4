-- Nothing looks outbox events up by user; the index only cost every ingest and every relay update.
DROP INDEX IF EXISTS staging.user_events_user;
