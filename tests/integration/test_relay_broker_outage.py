"""The broker stops in the middle of a relay: the relay fails, no event is marked published
without an acknowledgement, and after the broker is back a rerun publishes the rest, each once."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from confluent_kafka import Producer

from include.provisioning import TopicSpec, ensure_topic
from include.relay.avro import decode, load_parsed_schema
from include.relay.kafka import PRODUCER_SETTINGS
from include.relay.outbox import RelayError, relay_pending
from include.schema_registry import SchemaRegistryClient, load_schema_text
from local_stack import processes
from local_stack.cli import start_service, wait_healthy
from local_stack.services import kafka_client, pg_connect
from local_stack.topology import by_name
from tests.integration.relay_support import (
    EVENTS_SQL,
    fail_pending_events,
    read_topic,
)

pytestmark = pytest.mark.lifecycle  # stops Kafka: runs after the tests that need it steadily


def test_broker_stopped_mid_relay_loses_nothing(stack, scratch_db):
    kafka = kafka_client(stack.settings)
    topic = f"outage-{uuid.uuid4().hex[:6]}"
    schema_id = SchemaRegistryClient(stack.settings.registry_url).register(
        f"{topic}-value", load_schema_text())
    schema = load_parsed_schema()
    ensure_topic(kafka, TopicSpec(topic, 3))
    settings = {**PRODUCER_SETTINGS, **kafka,
                "message.timeout.ms": 15_000}
    with pg_connect(stack, scratch_db) as conn:
        fail_pending_events(conn)
        ids = [r[0] for r in conn.execute(EVENTS_SQL, (60_000,)).fetchall()]
        failure: list[BaseException] = []

        def relay() -> None:
            try:
                with pg_connect(stack, scratch_db) as own:
                    relay_pending(own, Producer(settings), topic, schema_id, schema,
                                  batch_size=2000)
            except BaseException as exc:
                failure.append(exc)

        worker = threading.Thread(target=relay)
        worker.start()
        deadline = time.monotonic() + 120
        while conn.execute("SELECT count(*) FROM staging.user_events WHERE id = ANY(%s) AND "
                           "published_at IS NOT NULL", (ids,)).fetchone()[0] == 0:
            assert time.monotonic() < deadline, "the relay published nothing"
            time.sleep(0.05)
        kafka = by_name("kafka")
        processes.stop(stack.settings.run_dir, "kafka", timeout_s=30)
        worker.join(180)
        assert not worker.is_alive()
        assert failure and isinstance(failure[0], RelayError), failure
        assert "stay pending for the next run" in str(failure[0])
        published_during = {r[0] for r in conn.execute(
            "SELECT id FROM staging.user_events WHERE id = ANY(%s) AND published_at IS NOT NULL",
            (ids,))}
        assert 0 < len(published_during) < len(ids)

        start_service(kafka, stack)
        wait_healthy([kafka], stack)
        stats = relay_pending(conn, Producer(settings), topic, schema_id, schema)
        assert stats.sent == len(ids) - len(published_during)
        left = conn.execute("SELECT count(*) FROM staging.user_events WHERE id = ANY(%s) AND "
                            "published_at IS NULL", (ids,)).fetchone()[0]
        assert left == 0
    on_topic = {decode(m.value(), schema)["event_id"] for m in read_topic(stack, topic)}
    assert published_during <= on_topic, "an event was marked published but never acknowledged"
    assert on_topic == set(ids), "an event was lost"
