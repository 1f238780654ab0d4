-- The schemas, tables, sequences, views and types of the current database that the given
-- owner does not own, outside PostgreSQL's own schemas: kind, schema, name for ALTER ... OWNER TO.
-- A sequence that belongs to a column (serial, identity) follows its table; so do the array,
-- row and multirange types of types and tables. It runs with a parameter, so its percent signs are doubled.
SELECT 'SCHEMA' AS kind, NULL AS schema, n.nspname AS name
FROM pg_namespace n
WHERE n.nspname NOT IN ('public', 'information_schema') AND n.nspname NOT LIKE 'pg\_%%'
  AND n.nspowner <> (SELECT oid FROM pg_roles WHERE rolname = %(owner)s)
UNION ALL
SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                      WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                      ELSE 'TABLE' END, n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f')
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%%'
  AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = %(owner)s)
  AND NOT (c.relkind = 'S' AND EXISTS (
    SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
      AND d.deptype IN ('a', 'i')))
UNION ALL
SELECT 'TYPE', n.nspname, t.typname
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('e', 'd', 'r')
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%%'
  AND t.typowner <> (SELECT oid FROM pg_roles WHERE rolname = %(owner)s)
