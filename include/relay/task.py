"""The relay task's body: the topic must exist (its size limit is read from the broker), the
record's schema id comes from the registry (provisioning's idempotent registration), the producer
from the Kafka provider's hook; then the outbox drains in acknowledged batches."""

from __future__ import annotations

from contextlib import closing
from functools import cache
from typing import Any

from include import names
from include.connections import kafka_config, registry_url
from include.dag_defaults import RELAY_BATCH_SIZE
from include.provisioning import (
    MissingTopicError,
    register_subject,
    require_topic,
    topic_max_message_bytes,
)
from include.relay.avro import load_parsed_schema
from include.relay.kafka import RelayProducerHook
from include.relay.outbox import RelayStats, relay_pending


@cache
def schema_id_for(url: str) -> int:
    """Once per process: the registry refuses a change that breaks the subject's rule, and the
    task then fails with the registry's reason."""
    return register_subject(url)


def run_relay(batch_size: int = RELAY_BATCH_SIZE, topic: str = names.USERS_TOPIC,
              database: str | None = None) -> RelayStats:
    """Drains the outbox of `database` (the connection's own by default) onto `topic`. A topic
    that does not exist fails the task at once: no retry creates it."""
    from airflow.exceptions import AirflowFailException
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    try:
        require_topic(kafka_config(), topic)
    except MissingTopicError as exc:
        raise AirflowFailException(str(exc)) from exc
    max_message_bytes = topic_max_message_bytes(kafka_config(), topic)
    schema_id = schema_id_for(registry_url())
    producer = RelayProducerHook().get_producer()
    hook = PostgresHook(postgres_conn_id=names.POSTGRES_RELAY_CONN_ID, database=database or None)
    with closing(hook.get_conn()) as conn:
        return relay_pending(conn, producer, topic, schema_id, load_parsed_schema(),
                             batch_size=batch_size, max_message_bytes=max_message_bytes)


def alert_failed_events(stats: RelayStats, context: Any) -> dict[str, Any] | None:
    """An alert when events of this run were marked failed (they broke the record contract,
    or the broker would refuse them): they are quarantined, never retried on their own."""
    if not stats.failed_encoding:
        return None
    from include.alerts import EVENTS_FAILED_ENCODING, send_run_alert

    return send_run_alert(
        context, EVENTS_FAILED_ENCODING,
        f"{stats.failed_encoding} outbox event(s) could not be sent and were marked failed in "
        f"staging.user_events with their reason; {stats.sent} event(s) were published",
        counts={"events_failed": stats.failed_encoding, "events_sent": stats.sent},
        examples=[{"event_id": event_id, "reason": reason}
                  for event_id, reason in stats.failure_examples])


def skip_reason(stats: RelayStats) -> str | None:
    """Why the run emits no Kafka asset event: nothing was sent."""
    if stats.sent:
        return None
    if stats.failed_encoding:
        return (f"none of the {stats.failed_encoding} claimed event(s) could be sent: all were "
                f"marked failed (see the alert)")
    return "the outbox had no unpublished event"


def relay_task(params: dict[str, Any], context: Any,
               batch_size: int = RELAY_BATCH_SIZE) -> RelayStats:
    """The body of every relay task (the relay DAG's, the replay's): drain the outbox, alert on
    events marked failed, and skip (no Kafka asset event) when nothing was sent."""
    from airflow.exceptions import AirflowSkipException

    stats = run_relay(batch_size, params["topic"], params["database"])
    alert_failed_events(stats, context)
    if reason := skip_reason(stats):
        raise AirflowSkipException(reason)
    return stats
