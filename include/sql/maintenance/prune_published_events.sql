-- One batch of the retention (include/maintenance.py): published events older than the cutoff,
-- within one range of ids. Pending and failed events are never deleted.
WITH pruned AS (
    DELETE FROM staging.user_events
    WHERE id >= %(from_id)s AND id < %(from_id)s + %(batch_size)s
      AND published_at < %(cutoff)s
    RETURNING 1
)
SELECT count(*) FROM pruned;
