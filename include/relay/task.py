"""The relay task's body: the topic must exist (its size limit is read from the broker), the
record's schema id comes from the registry (provisioning's idempotent registration), the producer
from the Kafka provider's hook; then the outbox drains in acknowledged batches."""

from __future__ import annotations

from contextlib import closing
from functools import cache

from include import names
from include.connections import kafka_config, registry_url
from include.dag_defaults import RELAY_BATCH_SIZE
from include.provisioning import register_subject, require_topic, topic_max_message_bytes
from include.relay.avro import load_parsed_schema
from include.relay.kafka import RelayProducerHook
from include.relay.outbox import RelayStats, relay_pending


@cache
def schema_id_for(url: str) -> int:
    """Once per process: the registry refuses a change that breaks the subject's rule, and the
    task then fails with the registry's reason."""
    return register_subject(url)


def run_relay(batch_size: int = RELAY_BATCH_SIZE, topic: str = names.USERS_TOPIC) -> RelayStats:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    require_topic(kafka_config(), topic)
    max_message_bytes = topic_max_message_bytes(kafka_config(), topic)
    schema_id = schema_id_for(registry_url())
    producer = RelayProducerHook().get_producer()
    hook = PostgresHook(postgres_conn_id=names.POSTGRES_CONN_ID)
    with closing(hook.get_conn()) as conn:
        return relay_pending(conn, producer, topic, schema_id, load_parsed_schema(),
                             batch_size=batch_size, max_message_bytes=max_message_bytes)
