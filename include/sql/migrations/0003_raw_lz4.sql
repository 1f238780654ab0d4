-- Raw pages are megabytes of JSON: lz4 compresses them several times faster than the default pglz.
ALTER TABLE staging.users_raw ALTER COLUMN response SET COMPRESSION lz4;
