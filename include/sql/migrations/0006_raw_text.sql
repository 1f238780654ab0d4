-- Raw pages and quarantined records are kept as the text that arrived: jsonb refuses what a
-- hostile or broken API may send (NUL escapes, lone surrogates), and that is exactly what the
-- quarantine must keep. Both are read by people and tests, never by the hops.
ALTER TABLE staging.users_raw ALTER COLUMN response TYPE text USING response::text;
ALTER TABLE staging.rejected_users ALTER COLUMN payload TYPE text USING payload::text;
