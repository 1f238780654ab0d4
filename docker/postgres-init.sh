#!/bin/sh
# First start of the postgres container: the Airflow metadata and schema-registry databases beside
# `userstream` (POSTGRES_DB). The userstream tables come from include/sql/migrations, applied by
# the airflow-init service (include/provisioning.py), the same way local mode applies them.
set -eu
for database in airflow registry; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -c "CREATE DATABASE \"$database\" OWNER \"$POSTGRES_USER\""
done
