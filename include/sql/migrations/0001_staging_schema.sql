-- The staging schema of the userstream database: raw API responses, normalised users and the
-- transactional outbox live here (tables are added by later migrations).
CREATE SCHEMA IF NOT EXISTS staging;
