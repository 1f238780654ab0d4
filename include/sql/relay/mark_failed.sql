-- Parameters: %(id)s, %(failure)s.
UPDATE staging.user_events SET failed_at = now(), failure = %(failure)s WHERE id = %(id)s;
