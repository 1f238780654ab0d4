-- What each role of the pipeline may do in its database, applied after the migrations on every
-- provisioning (GRANT is idempotent), with the role names of include/names.py filled in.
-- Ingest writes the staging tables and the outbox in one transaction (ON CONFLICT reads them).
GRANT USAGE ON SCHEMA staging TO ${ingest}, ${relay}, ${status};
GRANT SELECT, INSERT, UPDATE ON staging.users, staging.users_raw, staging.rejected_users,
  staging.user_events TO ${ingest};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA staging TO ${ingest};
-- The relay claims pending events and marks them published or failed.
GRANT SELECT, UPDATE ON staging.user_events TO ${relay};
-- The status page and `make status` read.
GRANT SELECT ON ALL TABLES IN SCHEMA staging TO ${status};
