-- The functions and procedures of the current database that the given owner does not
-- own, outside PostgreSQL's own schemas: schema, name, argument types for ALTER ROUTINE.
SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%%'
  AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = %(owner)s)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                    AND d.objid = p.oid AND d.deptype = 'e')
