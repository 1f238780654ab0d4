"""The relay's Kafka producer: the provider's hook, with an idempotent, acks=all, compressed
producer on top of the connection's settings (bootstrap servers, security)."""

from __future__ import annotations

from typing import Any

from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook

from include import names

PRODUCER_SETTINGS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 5,
    "batch.size": 1_000_000,
    "queue.buffering.max.messages": 200_000,
    "message.timeout.ms": 60_000,
}


class RelayProducerHook(KafkaProducerHook):
    """The connection's client settings with the relay's delivery guarantees on top."""

    def __init__(self, kafka_config_id: str = names.KAFKA_CONN_ID) -> None:
        super().__init__(kafka_config_id=kafka_config_id)

    def get_producer(self) -> Any:
        from confluent_kafka import Producer

        return Producer({**self.get_connection(self.kafka_config_id).extra_dejson,
                         **PRODUCER_SETTINGS})
