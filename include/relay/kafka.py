"""Kafka settings of the relay: an idempotent, acks=all, compressed producer, and the topic."""

from __future__ import annotations

from typing import Any

PRODUCER_SETTINGS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 5,
    "batch.size": 1_000_000,
    "queue.buffering.max.messages": 200_000,
    "message.timeout.ms": 60_000,
}


def ensure_topic(admin_config: dict[str, Any], topic: str, partitions: int,
                 replication_factor: int = 1) -> bool:
    """Creates the topic if it is missing; True when it was created now."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(admin_config)
    if topic in admin.list_topics(timeout=15).topics:
        return False
    future = admin.create_topics([NewTopic(topic, partitions, replication_factor)])[topic]
    try:
        future.result(30)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
        return False
    return True
