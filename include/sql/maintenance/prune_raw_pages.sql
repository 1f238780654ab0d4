-- One batch of the retention (include/maintenance.py): raw API pages fetched before the cutoff,
-- within one range of ids.
WITH pruned AS (
    DELETE FROM staging.users_raw
    WHERE id >= %(from_id)s AND id < %(from_id)s + %(batch_size)s
      AND fetched_at < %(cutoff)s
    RETURNING 1
)
SELECT count(*) FROM pruned;
