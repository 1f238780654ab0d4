-- Claims the oldest unpublished events; rows another relay holds are skipped, never sent twice.
-- The row locks last until the claiming transaction ends. event_time is in epoch milliseconds,
-- as the Avro record carries it. Parameters: %(batch_size)s.
SELECT id, user_id::text, content_hash, payload,
       floor(extract(epoch FROM created_at) * 1000)::bigint AS event_time
FROM staging.user_events
WHERE published_at IS NULL AND failed_at IS NULL
ORDER BY id
LIMIT %(batch_size)s
FOR UPDATE SKIP LOCKED;
