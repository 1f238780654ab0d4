"""What the relay tests share: events written straight into a scratch outbox, a producer with the
relay's settings, and reading a topic back whole."""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from include.relay.kafka import PRODUCER_SETTINGS
from local_stack.services import kafka_client

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


def fail_pending_events(conn) -> None:
    """Marks what earlier tests left pending in the scratch outbox failed, so a relay run of the
    test sends only the test's own events."""
    conn.execute("UPDATE staging.user_events SET failed_at = now(), failure = 'test reset' "
                 "WHERE published_at IS NULL AND failed_at IS NULL")


def producer(stack) -> Producer:
    return Producer({**kafka_client(stack.settings), **PRODUCER_SETTINGS})


def read_topic(stack, topic: str) -> list:
    consumer = Consumer({**kafka_client(stack.settings),
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
