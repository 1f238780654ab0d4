"""The relay against events it cannot send, on a scratch outbox and topic: a message over the
broker's size limit, one the producer refuses, a payload that breaks the record contract. Each is
marked failed with its reason, the events behind it are published, and none is produced twice."""

from __future__ import annotations

import json
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from include.provisioning import topic_max_message_bytes
from include.relay.avro import decode, load_parsed_schema
from include.relay.kafka import PRODUCER_SETTINGS
from include.relay.outbox import relay_pending
from include.schema_registry import SchemaRegistryClient, load_schema_text
from local_stack.services import kafka_client, pg_connect
from tests.integration.relay_support import EVENTS_SQL, fail_pending_events, read_topic

BIG_PAYLOAD = {"user_id": None, "street_name": "x" * 900, "city": "y" * 900, "state": "z" * 900}


@pytest.fixture
def outbox(stack, scratch_db):
    with pg_connect(stack, scratch_db) as conn:
        fail_pending_events(conn)
        yield conn


def _topic(stack, max_message_bytes: int | None = None) -> tuple[str, int]:
    topic = f"relay-hostile-{uuid.uuid4().hex[:6]}"
    config = {"max.message.bytes": str(max_message_bytes)} if max_message_bytes else {}
    admin = AdminClient(kafka_client(stack.settings))
    admin.create_topics([NewTopic(topic, 3, 1, config=config)])[topic].result(30)
    schema_id = SchemaRegistryClient(stack.settings.registry_url).register(
        f"{topic}-value", load_schema_text())
    return topic, schema_id


def _insert(conn, payload: dict) -> int:
    user_id = str(uuid.uuid4())
    return conn.execute(
        "INSERT INTO staging.user_events (user_id, content_hash, payload) VALUES (%s, 'h', %s) "
        "RETURNING id", (user_id, json.dumps({**payload, "user_id": user_id}))).fetchone()[0]


def _with_one_bad_event(conn, payload: dict) -> tuple[list[int], int]:
    before = [r[0] for r in conn.execute(EVENTS_SQL, (10,)).fetchall()]
    bad = _insert(conn, payload)
    after = [r[0] for r in conn.execute(EVENTS_SQL, (10,)).fetchall()]
    return before + after, bad


def _state(conn, event_id: int) -> tuple:
    return conn.execute("SELECT published_at IS NOT NULL, failed_at IS NOT NULL, failure "
                        "FROM staging.user_events WHERE id = %s", (event_id,)).fetchone()


def _assert_each_good_event_once(stack, conn, topic: str, good: list[int]) -> None:
    on_topic = [decode(m.value(), load_parsed_schema())["event_id"]
                for m in read_topic(stack, topic)]
    assert sorted(on_topic) == sorted(good), "an event is missing or was produced twice"
    published = conn.execute("SELECT count(*) FROM staging.user_events WHERE id = ANY(%s) AND "
                             "published_at IS NOT NULL", (good,)).fetchone()[0]
    assert published == len(good)


def test_a_message_over_the_topics_limit_is_failed_and_the_rest_goes_once(stack, outbox):
    topic, schema_id = _topic(stack, max_message_bytes=2000)
    limit = topic_max_message_bytes(kafka_client(stack.settings), topic)
    assert limit == 2000
    good, bad = _with_one_bad_event(outbox, BIG_PAYLOAD)
    producer = Producer({**PRODUCER_SETTINGS, **kafka_client(stack.settings)})
    stats = relay_pending(outbox, producer, topic, schema_id, load_parsed_schema(),
                          batch_size=7, max_message_bytes=limit)
    assert (stats.sent, stats.failed_encoding) == (20, 1)
    published, failed, reason = _state(outbox, bad)
    assert failed and not published and "exceeds the broker's limit of 2000" in reason
    _assert_each_good_event_once(stack, outbox, topic, good)


def test_a_message_the_producer_refuses_fails_alone_and_nothing_is_sent_twice(stack, outbox):
    topic, schema_id = _topic(stack)
    good, bad = _with_one_bad_event(outbox, BIG_PAYLOAD)
    # The client's own limit is below the message: produce() raises for it.
    producer = Producer({**PRODUCER_SETTINGS, **kafka_client(stack.settings),
                         "message.max.bytes": 2000})
    for _ in range(2):  # a second run finds nothing left to send
        relay_pending(outbox, producer, topic, schema_id, load_parsed_schema(), batch_size=50)
    published, failed, reason = _state(outbox, bad)
    assert failed and not published and "the producer refused it" in reason
    _assert_each_good_event_once(stack, outbox, topic, good)


@pytest.mark.parametrize(("payload", "reason"), [
    ({"user_id": None, "age": 10**12}, "'age' is 1000000000000"),
    ({"user_id": None, "street_number": 2**40}, "'street_number'"),
    ({"user_id": None, "first_name": "Jo\x00hn"}, "U+0000"),
    ({"user_id": None, "dob": "1990-01-02T03:04:05.123456+00:00"}, "sub-millisecond"),
])
def test_an_event_that_breaks_the_record_contract_is_failed(stack, outbox, payload, reason):
    topic, schema_id = _topic(stack)
    good, bad = _with_one_bad_event(outbox, payload)
    producer = Producer({**PRODUCER_SETTINGS, **kafka_client(stack.settings)})
    stats = relay_pending(outbox, producer, topic, schema_id, load_parsed_schema())
    assert (stats.sent, stats.failed_encoding) == (20, 1)
    published, failed, failure = _state(outbox, bad)
    assert failed and not published and reason in failure
    _assert_each_good_event_once(stack, outbox, topic, good)
