"""The relay task's body: producer from the Kafka provider's hook, schema id from the registry
connection, then drain the outbox in acknowledged batches."""

from __future__ import annotations

import os
from contextlib import closing
from functools import cache
from typing import Any

from include import names
from include.relay.avro import load_parsed_schema
from include.relay.kafka import PRODUCER_SETTINGS, ensure_topic
from include.relay.outbox import DEFAULT_BATCH_SIZE, RelayStats, relay_pending
from include.schema_registry import SchemaRegistryClient, SchemaRegistryError, load_schema_text


def registry_url(conn_id: str = names.SCHEMA_REGISTRY_CONN_ID) -> str:
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    port = f":{conn.port}" if conn.port else ""
    return f"{conn.schema or 'http'}://{conn.host}{port}{conn.extra_dejson.get('path', '')}"


@cache
def registered_schema_id(url: str, subject: str = names.USERS_VALUE_SUBJECT,
                         schema_text: str | None = None) -> int:
    """Registers the record's schema (idempotent) once per process. The registry refuses a change
    that breaks the subject's BACKWARD rule; the task then fails with the registry's reason."""
    try:
        return SchemaRegistryClient(url).register(subject, schema_text or load_schema_text())
    except SchemaRegistryError as exc:
        if exc.status == 409:
            raise SchemaRegistryError(
                f"the registry refused include/schemas/user_created.avsc for subject {subject!r}: "
                f"it is not BACKWARD compatible with the registered versions ({exc.body[:300]}). "
                "Add fields as optional with a default instead of changing or removing them.",
                exc.status, exc.body) from exc
        raise


def _producer_hook():
    from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook

    class RelayProducerHook(KafkaProducerHook):
        """The provider's producer hook with the relay's delivery guarantees on top of the
        connection's settings (bootstrap servers, security)."""

        def _get_client(self, config: dict[str, Any]):
            return super()._get_client({**config, **PRODUCER_SETTINGS})

    return RelayProducerHook(kafka_config_id=names.KAFKA_CONN_ID)


def run_relay(batch_size: int = DEFAULT_BATCH_SIZE) -> RelayStats:
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk import BaseHook

    kafka_config = BaseHook.get_connection(names.KAFKA_CONN_ID).extra_dejson
    ensure_topic(kafka_config, names.USERS_TOPIC,
                 int(os.environ.get("USERSTREAM_TOPIC_PARTITIONS", "3")))
    schema_id = registered_schema_id(registry_url())
    producer = _producer_hook().get_producer()
    hook = PostgresHook(postgres_conn_id=names.POSTGRES_CONN_ID)
    # Three connections, so claiming and committing run beside the encoding (outbox._Pipeline).
    with closing(hook.get_conn()) as conn, closing(hook.get_conn()) as spare, \
            closing(hook.get_conn()) as another_spare:
        return relay_pending(conn, producer, names.USERS_TOPIC, schema_id, load_parsed_schema(),
                             batch_size=batch_size, spare_conns=[spare, another_spare])
