-- Claims the oldest unpublished events; rows another relay holds are skipped, never sent twice.
-- Parameters: %(batch_size)s.
SELECT id, user_id::text, content_hash, payload, created_at
FROM staging.user_events
WHERE published_at IS NULL AND failed_at IS NULL
ORDER BY id
LIMIT %(batch_size)s
FOR UPDATE SKIP LOCKED;
