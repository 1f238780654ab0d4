"""Kafka clients that probe what a login may do: each call either does it or raises."""

from __future__ import annotations

import time

import pytest


def kafka_refuses(config: dict, action) -> None:
    """`action(config)` must fail with an authorization or authentication error."""
    from confluent_kafka import KafkaException

    with pytest.raises(KafkaException) as refused:
        action(config)
    assert any(word in str(refused.value) for word in (
        "AUTHORIZATION", "Authorization", "authorization", "Authentication", "SASL",
        "transport")), refused.value


def produce_probe(config: dict, topic: str) -> None:
    from confluent_kafka import KafkaException, Producer

    errors = []
    producer = Producer({**config, "message.timeout.ms": 10_000,
                         "socket.connection.setup.timeout.ms": 5_000})
    producer.produce(topic, b"probe", key=b"k", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(20)
    if errors and errors[0] is not None:
        raise KafkaException(errors[0])
    assert errors == [None], errors


def read_probe(config: dict, topic: str, group: str) -> bytes:
    from confluent_kafka import Consumer, KafkaException

    consumer = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            return message.value()
        raise AssertionError("no message within 20 s")
    finally:
        consumer.close()


def list_topics(config: dict) -> set[str]:
    from confluent_kafka.admin import AdminClient

    client = AdminClient({**config, "socket.connection.setup.timeout.ms": 5_000})
    return set(client.list_topics(timeout=10).topics)


def create_topic(config: dict, name: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    client = AdminClient(config)
    client.create_topics([NewTopic(name, 1, 1)])[name].result(15)
