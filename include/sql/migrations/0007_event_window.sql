-- The ingest window that staged each outbox event, so a window's events can be replayed
-- (include/maintenance.py). Events staged before this migration have none.
ALTER TABLE staging.user_events ADD COLUMN IF NOT EXISTS window_start timestamptz;
