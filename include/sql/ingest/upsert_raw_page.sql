-- Parameters: seed, page, window_start, window_end, results, response (the body as received).
INSERT INTO staging.users_raw (seed, page, window_start, window_end, results, response)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (seed, page) DO UPDATE
    SET response = EXCLUDED.response, results = EXCLUDED.results, fetched_at = now();
