-- The window's normalised users, loaded with COPY, then merged set-wise. Same columns, same order
-- as staging.users minus the bookkeeping ones, so `incoming_users::text` is the user's content.
CREATE TEMP TABLE incoming_users (
    LIKE staging.users INCLUDING DEFAULTS
) ON COMMIT DROP;
ALTER TABLE incoming_users DROP COLUMN content_hash, DROP COLUMN first_window_start,
    DROP COLUMN last_window_start, DROP COLUMN created_at, DROP COLUMN updated_at;
