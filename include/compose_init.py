"""One-shot init of the docker compose stack (service `airflow-init`): Airflow's metadata
database, then the schemas local mode's bootstrap applies (PostgreSQL migrations, the Kafka
topic, the Cassandra keyspace and tables, the Avro subject), reached through the same
AIRFLOW_CONN_* connections the DAGs use. Idempotent: every `docker compose up` runs it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from include import cql, names
from include.local_mode.bootstrap import SUBJECT_COMPATIBILITY, migrate, register_subject
from include.relay.kafka import ensure_topic

log = logging.getLogger("userstream.compose_init")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    subprocess.run(["airflow", "db", "migrate"], check=True)

    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk import BaseHook

    from include.relay.task import registry_url

    conn = PostgresHook(postgres_conn_id=names.POSTGRES_CONN_ID).get_conn()
    conn.autocommit = True
    try:
        log.info("userstream migrations applied: %s", migrate(conn) or "none (up to date)")
    finally:
        conn.close()

    kafka_config = BaseHook.get_connection(names.KAFKA_CONN_ID).extra_dejson
    partitions = int(os.environ.get("USERSTREAM_TOPIC_PARTITIONS", "3"))
    created = ensure_topic(kafka_config, names.USERS_TOPIC, partitions)
    log.info("topic %s %s", names.USERS_TOPIC, "created" if created else "exists")

    log.info("CQL statements applied: %d", cql.apply_with_hook(names.CASSANDRA_CONN_ID))

    schema_id = register_subject(registry_url())
    log.info("subject %s: schema id %d, %s", names.USERS_VALUE_SUBJECT, schema_id,
             SUBJECT_COMPATIBILITY)
    return 0


if __name__ == "__main__":
    sys.exit(main())
