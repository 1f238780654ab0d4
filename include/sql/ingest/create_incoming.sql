-- The window's normalised users, loaded page by page with COPY, then merged set-wise: the
-- staging columns, the content hash and the outbox payload (both built by the ingest task).
CREATE TEMP TABLE incoming_users (
    LIKE staging.users INCLUDING DEFAULTS
) ON COMMIT DROP;
ALTER TABLE incoming_users DROP COLUMN first_window_start, DROP COLUMN last_window_start,
    DROP COLUMN created_at, DROP COLUMN updated_at, ADD COLUMN payload text NOT NULL;
