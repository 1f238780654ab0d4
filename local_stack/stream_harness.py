"""Helpers for the stream-hop tests and benchmark: Confluent-framed user events on a topic, the
stream job run by the project's spark-submit, and Cassandra look-ups."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from include import names
from include.provisioning import TopicSpec, ensure_topic
from include.relay.avro import encode, event_record, load_parsed_schema
from include.relay.kafka import PRODUCER_SETTINGS
from include.schema_registry import SchemaRegistryClient, load_schema_text
from include.stream.job import SparkRuntime, StreamJobConfig, login_environment
from local_stack.services import kafka_client
from local_stack.settings import CASSANDRA_PASSWORD_NAMES, Settings, read_env_file

FIRST_NAMES = ["Åse", "Zoë", "Nguyễn", "Léa", "John", "Али", "Mehmet", "Ana"]


def synthetic_user(rng: random.Random, index: int) -> dict[str, Any]:
    """A staged-user payload like the outbox's (values vary, some are null, text is non-ASCII)."""
    first = rng.choice(FIRST_NAMES)
    return {
        "user_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "gender": rng.choice(["female", "male"]), "title": "Ms",
        "first_name": first, "last_name": f"Test{index}",
        "email": f"{first.lower()}.Test{index}@Example.com",
        "username": f"user{index}", "phone": f"(0{index % 10}) 555-{index:04d}",
        "cell": None if index % 7 == 0 else f"07{index:08d}",
        "street_number": index % 9999, "street_name": "Østre Aker vei", "city": "Bærum",
        "state": "Akershus", "country": "Norway",
        "postcode": f"{index % 10000:04d}" if index % 2 else str(10000 + index % 90000),
        "latitude": round(rng.uniform(-90, 90), 4), "longitude": round(rng.uniform(-180, 180), 4),
        "timezone_offset": "+9:30", "timezone_description": "Adelaide, Darwin",
        "dob": (datetime(1950, 1, 1, tzinfo=UTC) + timedelta(days=index % 20000)).isoformat(),
        "age": 20 + index % 60,
        "registered_at": (datetime(2010, 1, 1, tzinfo=UTC)
                          + timedelta(minutes=index)).isoformat(),
        "nat": "NO", "id_name": "FN", "id_value": None if index % 5 == 0 else f"{index:011d}",
        "picture_large": f"https://example.org/large/{index}.jpg",
        "picture_medium": f"https://example.org/med/{index}.jpg",
        "picture_thumbnail": f"https://example.org/thumb/{index}.jpg",
    }


def register_subject(settings: Settings, topic: str, schema_text: str | None = None) -> int:
    return SchemaRegistryClient(settings.registry_url).register(
        f"{topic}-value", schema_text or load_schema_text())


def produce_users(settings: Settings, topic: str, count: int, seed: int = 7,
                  first_event_id: int = 1, schema_id: int | None = None,
                  schema: dict | None = None) -> dict[str, dict[str, Any]]:
    """Produces `count` framed events; returns the payloads by user_id."""
    ensure_topic(kafka_client(settings), TopicSpec(topic, 3))
    schema_id = schema_id or register_subject(settings, topic)
    schema = schema or load_parsed_schema()
    producer = Producer({**PRODUCER_SETTINGS, **kafka_client(settings)})
    rng = random.Random(seed)
    created_at = datetime.now(UTC)
    users: dict[str, dict[str, Any]] = {}
    for i in range(count):
        payload = synthetic_user(rng, first_event_id + i)
        users[payload["user_id"]] = payload
        record = event_record(first_event_id + i, payload, f"hash-{i}", created_at)
        _produce(producer, topic, payload["user_id"].encode(), encode(schema_id, schema, record))
    assert producer.flush(60) == 0
    return users


def produce_raw(settings: Settings, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({**PRODUCER_SETTINGS, **kafka_client(settings)})
    for key, value in messages:
        _produce(producer, topic, key, value)
    assert producer.flush(60) == 0


def _produce(producer: Producer, topic: str, key: bytes, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, key=key, value=value)
            producer.poll(0)
            return
        except BufferError:
            producer.poll(0.5)


def job_config(settings: Settings, topic: str, keyspace: str, checkpoint: Path,
               report: Path, **overrides: Any) -> StreamJobConfig:
    """The job on the local stack's services; `overrides` replace any setting (a test points
    one at a closed port, for instance)."""
    settings_of_stack = {"bootstrap_servers": settings.kafka_bootstrap,
                         "registry_url": settings.registry_url,
                         "cassandra_host": settings.host, "cassandra_port": settings.cassandra_port}
    return StreamJobConfig(**{**settings_of_stack, **overrides}, checkpoint=checkpoint,
                           topic=topic, keyspace=keyspace, report=report)


def spark_runtime(settings: Settings) -> SparkRuntime:
    return SparkRuntime(str(settings.spark_submit),
                        ",".join(str(p) for p in settings.spark_jars), str(settings.spark_python))


def start_job(settings: Settings, config: StreamJobConfig, log_path: Path,
              ) -> subprocess.Popen:
    runtime = spark_runtime(settings)
    log = log_path.open("w")
    return subprocess.Popen(runtime.command("local[2]", config),
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **runtime.env(), **stream_job_login(settings)},
                            start_new_session=True)


def stream_job_login(settings: Settings) -> dict[str, str]:
    """The stream job's Cassandra role and Kafka principal, as the DAG's operator gives them (in
    the environment)."""
    role = names.CASSANDRA_STREAM_ROLE
    password = read_env_file(settings.secrets_file)[CASSANDRA_PASSWORD_NAMES[role]]
    return login_environment(role, password,
                             kafka_client(settings, names.KAFKA_STREAM_PRINCIPAL))


def run_job(settings: Settings, config: StreamJobConfig, log_path: Path,
            timeout_s: int = 900) -> dict[str, Any]:
    """Runs the job to its end, as the DAG's operator does."""
    process = start_job(settings, config, log_path)
    try:
        code = process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    return job_report(code, config, log_path)


def job_report(exit_code: int, config: StreamJobConfig, log_path: Path) -> dict[str, Any]:
    """The report of a job that exited, which must have exited cleanly."""
    assert exit_code == 0, f"stream job exited {exit_code}:\n{log_path.read_text()[-4000:]}"
    return json.loads(Path(config.report).read_text())


def cassandra_rows(session, keyspace: str, table: str = "users") -> list[Any]:
    return list(session.execute(f"SELECT * FROM {keyspace}.{table}", timeout=120))
