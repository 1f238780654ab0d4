"""The outbox relay against the real PostgreSQL, Kafka and schema registry."""

from __future__ import annotations

import threading
import uuid

import pytest

from include.provisioning import TopicSpec, ensure_topic
from include.relay.avro import decode, load_parsed_schema, split_frame
from include.relay.outbox import relay_pending
from include.schema_registry import SchemaRegistryClient, load_schema_text
from local_stack.services import kafka_client, pg_connect
from tests.integration.relay_support import (
    EVENTS_SQL,
    fail_pending_events,
    producer,
    read_topic,
)


@pytest.fixture
def relay_env(stack, scratch_db):
    """A scratch topic and subject, and the scratch database's outbox emptied of what earlier
    tests left pending."""
    registry = SchemaRegistryClient(stack.settings.registry_url)
    topic = f"relay-test-{uuid.uuid4().hex[:6]}"
    schema_id = registry.register(f"{topic}-value", load_schema_text())
    schema = load_parsed_schema()
    ensure_topic(kafka_client(stack.settings), TopicSpec(topic, 3))
    with pg_connect(stack, scratch_db) as conn:
        fail_pending_events(conn)
        yield conn, topic, schema_id, schema, registry


def test_50k_events_relayed_exactly_once(stack, relay_env):
    conn, topic, schema_id, schema, registry = relay_env
    ids = [r[0] for r in conn.execute(EVENTS_SQL, (50_000,)).fetchall()]
    stats = relay_pending(conn, producer(stack), topic, schema_id, schema)
    assert stats.batches == 10
    assert stats.sent == 50_000 and stats.failed_encoding == 0
    assert stats.first_event_id == min(ids) and stats.last_event_id == max(ids)
    messages = read_topic(stack, topic)
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
    by_key = {d["event_id"]: str(d["user_id"]) for d in decoded}
    extra = stats.as_extra()
    assert extra["topic"] == topic and len(extra["sample_events"]) == 20
    assert all(by_key[event_id] == user_id for user_id, event_id in extra["sample_events"])


def test_two_relays_never_send_the_same_event(stack, scratch_db, relay_env):
    conn, topic, schema_id, schema, _ = relay_env
    ids = [r[0] for r in conn.execute(EVENTS_SQL, (20_000,)).fetchall()]
    results, errors = [], []

    def run() -> None:
        try:
            with pg_connect(stack, scratch_db) as own:
                results.append(relay_pending(own, producer(stack), topic, schema_id, schema,
                                             batch_size=1000))
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
    event_ids = [decode(m.value(), schema)["event_id"] for m in read_topic(stack, topic)]
    assert len(event_ids) == len(set(event_ids)) == 20_000
    assert set(event_ids) == set(ids)


def test_an_event_that_cannot_be_encoded_is_marked_failed(stack, relay_env):
    conn, topic, schema_id, schema, _ = relay_env
    good = [r[0] for r in conn.execute(EVENTS_SQL, (10,)).fetchall()]
    bad = conn.execute("INSERT INTO staging.user_events (user_id, content_hash, payload) "
                       "VALUES (gen_random_uuid(), 'x', '{\"age\": \"not a number\"}') "
                       "RETURNING id").fetchone()[0]
    stats = relay_pending(conn, producer(stack), topic, schema_id, schema, batch_size=4)
    assert (stats.sent, stats.failed_encoding) == (10, 1)
    failed = conn.execute("SELECT failed_at IS NOT NULL, failure, published_at FROM "
                          "staging.user_events WHERE id = %s", (bad,)).fetchone()
    assert failed[0] and "cannot encode" in failed[1] and failed[2] is None
    assert stats.failure_examples == [(bad, failed[1])]
    assert len(read_topic(stack, topic)) == len(good)
