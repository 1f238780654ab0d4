-- Parameters: seed, page, position, window_start, user_id, reason, payload (the record as JSON text).
INSERT INTO staging.rejected_users (seed, page, position, window_start, user_id, reason, payload)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (seed, page, position) DO UPDATE
    SET reason = EXCLUDED.reason, payload = EXCLUDED.payload, rejected_at = now();
