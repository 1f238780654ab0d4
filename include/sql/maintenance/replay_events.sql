-- Marks published events of a range unpublished again, so the relay sends them once more through
-- its normal path (include/maintenance.py). Failed and pending events are left as they are.
WITH replayed AS (
    UPDATE staging.user_events SET published_at = NULL
    WHERE published_at IS NOT NULL AND failed_at IS NULL
      AND id BETWEEN %(first_id)s AND %(last_id)s
      AND (%(window_start)s::timestamptz IS NULL OR window_start >= %(window_start)s)
      AND (%(window_end)s::timestamptz IS NULL OR window_start < %(window_end)s)
    RETURNING id
)
SELECT count(*), min(id), max(id) FROM replayed;
