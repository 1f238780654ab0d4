"""The outbox relay against the real PostgreSQL, Kafka and schema registry."""

from __future__ import annotations

import threading
import uuid
from contextlib import ExitStack, contextmanager

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from include import names
from include.local_mode.services import pg_connect
from include.relay.avro import decode, load_parsed_schema, split_frame
from include.relay.kafka import PRODUCER_SETTINGS, ensure_topic
from include.relay.outbox import relay_pending
from include.schema_registry import SchemaRegistryClient, load_schema_text

EVENTS_SQL = """
INSERT INTO staging.user_events (user_id, content_hash, payload)
SELECT u, md5(u::text), jsonb_build_object(
    'user_id', u, 'gender', 'female', 'first_name', 'Işıl', 'last_name', 'Akgül',
    'email', 'isil@example.com', 'postcode', '0958', 'latitude', 1.5, 'longitude', -2.25,
    'dob', '1990-01-02T03:04:05.678+00:00', 'age', 36, 'street_number', 12, 'nat', 'TR',
    'id_value', NULL)
FROM (SELECT gen_random_uuid() AS u FROM generate_series(1, %s)) s
RETURNING id
"""


@contextmanager
def pipeline_connections(stack, spares: int = 2):
    """Spare connections that switch relay_pending to its pipelined path (the task's path)."""
    with ExitStack() as stack_of_connections:
        yield [stack_of_connections.enter_context(pg_connect(stack, "userstream"))
               for _ in range(spares)]


def _producer(stack) -> Producer:
    return Producer({"bootstrap.servers": stack.settings.kafka_bootstrap, **PRODUCER_SETTINGS})


def _drain_outbox(stack, conn, schema_id, schema) -> None:
    scratch = f"relay-scratch-{uuid.uuid4().hex[:6]}"
    ensure_topic({"bootstrap.servers": stack.settings.kafka_bootstrap}, scratch, 1)
    relay_pending(conn, _producer(stack), scratch, schema_id, schema)


def _read_topic(stack, topic: str) -> list:
    consumer = Consumer({"bootstrap.servers": stack.settings.kafka_bootstrap,
                         "group.id": f"check-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    ends = {}
    for partition in metadata.partitions:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        ends[partition] = high
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    messages, done = [], {p for p, high in ends.items() if high == 0}
    while len(done) < len(ends):
        batch = consumer.consume(10_000, timeout=5)
        if not batch:
            break
        for message in batch:
            assert message.error() is None, message.error()
            messages.append(message)
            if message.offset() + 1 >= ends[message.partition()]:
                done.add(message.partition())
    consumer.close()
    assert sum(ends.values()) == len(messages)
    return messages


@pytest.fixture
def relay_env(stack):
    registry = SchemaRegistryClient(stack.settings.registry_url)
    schema_id = registry.register(names.USERS_VALUE_SUBJECT, load_schema_text())
    schema = load_parsed_schema()
    topic = f"relay-test-{uuid.uuid4().hex[:6]}"
    ensure_topic({"bootstrap.servers": stack.settings.kafka_bootstrap}, topic, 3)
    with pg_connect(stack, "userstream") as conn:
        _drain_outbox(stack, conn, schema_id, schema)
        yield conn, topic, schema_id, schema, registry


def test_50k_events_relayed_exactly_once(stack, relay_env):
    conn, topic, schema_id, schema, registry = relay_env
    ids = [r[0] for r in conn.execute(EVENTS_SQL, (50_000,)).fetchall()]
    with pipeline_connections(stack) as spares:
        stats = relay_pending(conn, _producer(stack), topic, schema_id, schema, spare_conns=spares)
    assert stats.batches == 10
    assert stats.sent == 50_000 and stats.failed_encoding == 0
    assert stats.first_event_id == min(ids) and stats.last_event_id == max(ids)
    messages = _read_topic(stack, topic)
    assert len(messages) == 50_000
    assert len({m.key() for m in messages}) == 50_000
    writer = load_parsed_schema(registry.schema_by_id(schema_id))
    decoded = [decode(m.value(), writer) for m in messages]
    assert {d["event_id"] for d in decoded} == set(ids)
    assert all(split_frame(m.value())[0] == schema_id for m in messages)
    assert all(str(d["user_id"]) == m.key().decode()
               for d, m in zip(decoded, messages, strict=True))
    sample = next(d for d in decoded if d["event_id"] == ids[0])
    assert (sample["first_name"], sample["postcode"], sample["id_value"]) == ("Işıl", "0958", None)
    unpublished = conn.execute("SELECT count(*) FROM staging.user_events WHERE id = ANY(%s) "
                               "AND published_at IS NULL", (ids,)).fetchone()[0]
    assert unpublished == 0
    assert sum(o + 1 for o in stats.partition_offsets.values()) == 50_000


def test_two_relays_never_send_the_same_event(stack, relay_env):
    conn, topic, schema_id, schema, _ = relay_env
    ids = [r[0] for r in conn.execute(EVENTS_SQL, (20_000,)).fetchall()]
    results, errors = [], []

    def run() -> None:
        try:
            with pg_connect(stack, "userstream") as own, pipeline_connections(stack) as spares:
                results.append(relay_pending(own, _producer(stack), topic, schema_id, schema,
                                             batch_size=1000, spare_conns=spares))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r.sent for r in results) == 20_000
    assert all(r.sent > 0 for r in results), "both relays should have claimed batches"
    event_ids = [decode(m.value(), schema)["event_id"] for m in _read_topic(stack, topic)]
    assert len(event_ids) == len(set(event_ids)) == 20_000
    assert set(event_ids) == set(ids)


@pytest.mark.parametrize("spares", [0, 2], ids=["one-connection", "pipelined"])
def test_an_event_that_cannot_be_encoded_is_marked_failed(stack, relay_env, spares):
    conn, topic, schema_id, schema, _ = relay_env
    good = [r[0] for r in conn.execute(EVENTS_SQL, (10,)).fetchall()]
    bad = conn.execute("INSERT INTO staging.user_events (user_id, content_hash, payload) "
                       "VALUES (gen_random_uuid(), 'x', '{\"age\": \"not a number\"}') "
                       "RETURNING id").fetchone()[0]
    with pipeline_connections(stack, spares) as spare_conns:
        stats = relay_pending(conn, _producer(stack), topic, schema_id, schema, batch_size=4,
                              spare_conns=spare_conns)
    assert (stats.sent, stats.failed_encoding) == (10, 1)
    failed = conn.execute("SELECT failed_at IS NOT NULL, failure, published_at FROM "
                          "staging.user_events WHERE id = %s", (bad,)).fetchone()
    assert failed[0] and "cannot encode" in failed[1] and failed[2] is None
    assert len(_read_topic(stack, topic)) == len(good)
