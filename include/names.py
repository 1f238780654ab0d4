"""Every name the hops share, defined once: DAG and connection ids, topic, subject, tables,
keyspace."""

from typing import Final

# The hops' DAGs, in pipeline order.
INGEST_DAG_ID: Final = "ingest_users"
RELAY_DAG_ID: Final = "relay_user_events"
STREAM_DAG_ID: Final = "stream_users_to_cassandra"
PIPELINE_DAG_IDS: Final = (INGEST_DAG_ID, RELAY_DAG_ID, STREAM_DAG_ID)
# Maintenance: retention of the staging data (daily) and replays (triggered by hand).
RETENTION_DAG_ID: Final = "prune_staging"
REPLAY_DAG_ID: Final = "replay_user_events"
ALL_DAG_IDS: Final = (*PIPELINE_DAG_IDS, RETENTION_DAG_ID, REPLAY_DAG_ID)

# Airflow connection ids (provider defaults where the provider has one).
POSTGRES_CONN_ID: Final = "postgres_default"
KAFKA_CONN_ID: Final = "kafka_default"
SCHEMA_REGISTRY_CONN_ID: Final = "schema_registry"
SPARK_CONN_ID: Final = "spark_default"
CASSANDRA_CONN_ID: Final = "cassandra_default"
RANDOMUSER_CONN_ID: Final = "randomuser_api"
ALERTS_WEBHOOK_CONN_ID: Final = "alerts_webhook"

# PostgreSQL
USERSTREAM_DATABASE: Final = "userstream"
STAGING_SCHEMA: Final = "staging"

# Kafka and the schema registry
USERS_TOPIC: Final = "users_created"
USERS_VALUE_SUBJECT: Final = f"{USERS_TOPIC}-value"

# Cassandra
CASSANDRA_KEYSPACE: Final = "userstream"
