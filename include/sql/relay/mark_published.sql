-- Parameters: %(ids)s, the events the broker acknowledged.
UPDATE staging.user_events SET published_at = now() WHERE id = ANY(%(ids)s);
