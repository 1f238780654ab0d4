"""Every name the hops share, defined once: DAG and connection ids, topic, subject, tables,
keyspace."""

from typing import Final

# The hops' DAGs, in pipeline order.
INGEST_DAG_ID: Final = "ingest_users"
RELAY_DAG_ID: Final = "relay_user_events"
STREAM_DAG_ID: Final = "stream_users_to_cassandra"
PIPELINE_DAG_IDS: Final = (INGEST_DAG_ID, RELAY_DAG_ID, STREAM_DAG_ID)
# The stream hop's long-lived query: one run of this DAG, started by the stream DAG, runs it.
STREAM_QUERY_DAG_ID: Final = "run_stream_query"
STREAM_QUERY_TASK_ID: Final = "run_stream_query"
# Maintenance: retention of the staging data (daily) and replays (triggered by hand).
RETENTION_DAG_ID: Final = "prune_staging"
REPLAY_DAG_ID: Final = "replay_user_events"
ALL_DAG_IDS: Final = (*PIPELINE_DAG_IDS, STREAM_QUERY_DAG_ID, RETENTION_DAG_ID, REPLAY_DAG_ID)

# Airflow connection ids (provider defaults where the provider has one).
# PostgreSQL, one connection per role: the provider's default owns the pipeline's schema
# (provisioning, retention, replays); each hop and the status page have their own.
POSTGRES_CONN_ID: Final = "postgres_default"
POSTGRES_INGEST_CONN_ID: Final = "postgres_ingest"
POSTGRES_RELAY_CONN_ID: Final = "postgres_relay"
POSTGRES_STATUS_CONN_ID: Final = "postgres_status"
POSTGRES_ADMIN_CONN_ID: Final = "postgres_admin"  # the superuser: compose's postgres-init only
# Kafka, one connection per principal: the provider's default is the relay's.
KAFKA_CONN_ID: Final = "kafka_default"
KAFKA_STREAM_CONN_ID: Final = "kafka_stream"
KAFKA_STATUS_CONN_ID: Final = "kafka_status"
KAFKA_ADMIN_CONN_ID: Final = "kafka_admin"
SCHEMA_REGISTRY_CONN_ID: Final = "schema_registry"
SPARK_CONN_ID: Final = "spark_default"
# Cassandra, one connection per role: the provider's default reads (landing check, pipeline
# page), the stream job writes, provisioning administers.
CASSANDRA_CONN_ID: Final = "cassandra_default"
CASSANDRA_STREAM_CONN_ID: Final = "cassandra_stream"
CASSANDRA_ADMIN_CONN_ID: Final = "cassandra_admin"
RANDOMUSER_CONN_ID: Final = "randomuser_api"
ALERTS_WEBHOOK_CONN_ID: Final = "alerts_webhook"

# PostgreSQL: a database per system, and a login role per component, none of them a superuser.
USERSTREAM_DATABASE: Final = "userstream"
AIRFLOW_DATABASE: Final = "airflow"
REGISTRY_DATABASE: Final = "registry"
STAGING_SCHEMA: Final = "staging"
POSTGRES_OWNER_ROLE: Final = "userstream_owner"  # the pipeline's schema: migrations, retention
POSTGRES_INGEST_ROLE: Final = "userstream_ingest"  # writes staging and the outbox
POSTGRES_RELAY_ROLE: Final = "userstream_relay"  # reads and marks the outbox
POSTGRES_STATUS_ROLE: Final = "userstream_status"  # reads
POSTGRES_AIRFLOW_ROLE: Final = "airflow"
POSTGRES_REGISTRY_ROLE: Final = "registry"
POSTGRES_DATABASE_OWNERS: Final = {USERSTREAM_DATABASE: POSTGRES_OWNER_ROLE,
                                   AIRFLOW_DATABASE: POSTGRES_AIRFLOW_ROLE,
                                   REGISTRY_DATABASE: POSTGRES_REGISTRY_ROLE}
POSTGRES_PIPELINE_ROLES: Final = (POSTGRES_INGEST_ROLE, POSTGRES_RELAY_ROLE, POSTGRES_STATUS_ROLE)
POSTGRES_LOGIN_ROLES: Final = (*POSTGRES_DATABASE_OWNERS.values(), *POSTGRES_PIPELINE_ROLES)

# Kafka and the schema registry
USERS_TOPIC: Final = "users_created"
USERS_VALUE_SUBJECT: Final = f"{USERS_TOPIC}-value"
# Kafka principals: the admin logs in with SASL/PLAIN (its credential sits in the broker's
# config, so the broker can start and create the others), the rest with SCRAM-SHA-512.
KAFKA_ADMIN_PRINCIPAL: Final = "userstream_admin"
KAFKA_RELAY_PRINCIPAL: Final = "userstream_relay"
KAFKA_STREAM_PRINCIPAL: Final = "userstream_stream"
KAFKA_STATUS_PRINCIPAL: Final = "userstream_status"
KAFKA_CONN_PRINCIPALS: Final = {KAFKA_CONN_ID: KAFKA_RELAY_PRINCIPAL,
                                KAFKA_STREAM_CONN_ID: KAFKA_STREAM_PRINCIPAL,
                                KAFKA_STATUS_CONN_ID: KAFKA_STATUS_PRINCIPAL,
                                KAFKA_ADMIN_CONN_ID: KAFKA_ADMIN_PRINCIPAL}
# The consumer groups: the stream job's (Spark's default prefix) and the pipeline page's.
STREAM_GROUP_PREFIX: Final = "spark-kafka-source"
PIPELINE_PAGE_GROUP: Final = "userstream-pipeline-page"

# Cassandra: the keyspace and the roles (created by provisioning with generated passwords).
CASSANDRA_KEYSPACE: Final = "userstream"
CASSANDRA_ADMIN_ROLE: Final = "userstream_admin"
CASSANDRA_STREAM_ROLE: Final = "userstream_stream"
CASSANDRA_READER_ROLE: Final = "userstream_reader"
# The role each Cassandra connection logs in as.
CASSANDRA_CONN_ROLES: Final = {CASSANDRA_CONN_ID: CASSANDRA_READER_ROLE,
                               CASSANDRA_STREAM_CONN_ID: CASSANDRA_STREAM_ROLE,
                               CASSANDRA_ADMIN_CONN_ID: CASSANDRA_ADMIN_ROLE}
POSTGRES_CONN_ROLES: Final = {POSTGRES_CONN_ID: POSTGRES_OWNER_ROLE,
                              POSTGRES_INGEST_CONN_ID: POSTGRES_INGEST_ROLE,
                              POSTGRES_RELAY_CONN_ID: POSTGRES_RELAY_ROLE,
                              POSTGRES_STATUS_CONN_ID: POSTGRES_STATUS_ROLE}


def postgres_password_setting(role: str) -> str:
    """The generated secret (and compose's variable) that holds a PostgreSQL role's password."""
    return f"POSTGRES_{role.upper()}_PASSWORD"


# The stream job's Cassandra and Kafka logins reach spark-submit in its environment, never on its
# command line (which every local user can read).
STREAM_CASSANDRA_USERNAME_ENV: Final = "USERSTREAM_CASSANDRA_USERNAME"
STREAM_CASSANDRA_PASSWORD_ENV: Final = "USERSTREAM_CASSANDRA_PASSWORD"
STREAM_KAFKA_SECURITY_ENV: Final = "USERSTREAM_KAFKA_SECURITY"  # librdkafka-named JSON settings
