"""Relay benchmark: events/s from the PostgreSQL outbox to Kafka (claim, Avro, produce, wait for
acks, mark published) for real ingested users, next to Kafka's own ProducerPerformance with the
same record size and producer settings, measured in the same run. The users are ingested into a
scratch database and relayed to scratch topics: the pipeline's own data is never touched.

Run with the stack up (`make up SOURCE=local`):
    USERSTREAM_SOURCE=local .venv/bin/python -m bench.relay_benchmark --events 100000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta

import psutil
from confluent_kafka import Producer

from bench.cpu import cpu_delta_s, cpu_s, service_process, tree_cpu_s
from include.ingest.window import IngestWindow, ingest_window
from include.kafka_jaas import jaas_config
from include.provisioning import TopicSpec, ensure_topic
from include.randomuser.client import RandomUserClient
from include.relay.avro import encode, event_record, load_parsed_schema
from include.relay.kafka import PRODUCER_SETTINGS
from include.relay.outbox import relay_pending
from include.schema_registry import SchemaRegistryClient, load_schema_text
from local_stack.cli import make_context
from local_stack.scratch import delete_scratch
from local_stack.services import kafka_client, pg_connect, scratch_database
from local_stack.settings import Settings


def java_client_properties(librdkafka: dict) -> str:
    """A Java client's properties for librdkafka's settings, login included: the password goes
    into `sasl.jaas.config`, which a properties file carries (never the command line)."""
    settings = {key: value for key, value in librdkafka.items()
                if key not in {"sasl.username", "sasl.password", "queue.buffering.max.messages"}}
    if "sasl.username" in librdkafka:
        settings["sasl.jaas.config"] = jaas_config(librdkafka)
    return "".join(f"{key}={str(value).lower() if isinstance(value, bool) else value}\n"
                   for key, value in settings.items())


def producer_performance(settings: Settings, topic: str, records: int, size: int) -> dict:
    props = {**PRODUCER_SETTINGS, **kafka_client(settings), "batch.size": 1_000_000}
    # In the state folder, readable by its owner only, and deleted after the run.
    config = settings.state_dir / f"bench-producer-{uuid.uuid4().hex[:8]}.properties"
    config.touch(mode=0o600)
    try:
        config.write_text(java_client_properties(props))
        command = ["java", "-Xmx512m", "-cp", str(settings.jvm_dir / "kafka" / "lib" / "*"),
                   "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
                   "--num-records", str(records), "--record-size", str(size),
                   "--throughput", "-1", "--producer.config", str(config)]
        finished = subprocess.run(command, capture_output=True, text=True)
    finally:
        config.unlink(missing_ok=True)
    if finished.returncode != 0:
        raise RuntimeError(f"ProducerPerformance failed ({finished.returncode}): "
                           f"{finished.stderr.strip()[-2000:]}")
    summary = finished.stdout.strip().splitlines()[-1]
    rate = float(re.search(r"([\d.]+) records/sec", summary).group(1))
    return {"records_per_s": round(rate), "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    ctx, _ = make_context(Settings.from_env())
    os.environ.update({k: v for k, v in ctx.env.items() if k.startswith("AIRFLOW_CONN_")})
    from airflow.providers.http.hooks.http import HttpHook

    s = ctx.settings
    hint = "make up SOURCE=local"
    admin = kafka_client(s)
    schema = load_parsed_schema()
    producer = Producer({**admin, **PRODUCER_SETTINGS})
    topic, perf_topic = (f"bench-{kind}-{uuid.uuid4().hex[:6]}" for kind in ("relay", "perf"))
    schema_id = SchemaRegistryClient(s.registry_url).register(f"{topic}-value",
                                                              load_schema_text())
    for name in (topic, perf_topic):
        ensure_topic(admin, TopicSpec.from_env(name))
    # A scratch outbox: the pipeline's own events are never touched.
    with scratch_database(ctx, "bench_relay") as database, pg_connect(ctx, database) as conn:
        start = datetime(2023, 1, 1, tzinfo=UTC)
        window = IngestWindow(f"bench-relay-{uuid.uuid4().hex[:8]}", start,
                              start + timedelta(minutes=1))
        client = RandomUserClient(HttpHook(method="GET", http_conn_id="randomuser_api"))
        ingested = ingest_window(window, client, conn, users_per_window=args.events)
        assert ingested.new_events == args.events, ingested
        sample = conn.execute(
            "SELECT id, payload, content_hash, created_at FROM staging.user_events "
            "WHERE published_at IS NULL AND failed_at IS NULL ORDER BY id LIMIT 1000").fetchall()
        size = round(sum(len(encode(schema_id, schema, event_record(i, p, h, c)))
                         for i, p, h, c in sample) / len(sample))
        relay_process, postgres = psutil.Process(), service_process(s.run_dir, "postgres", hint)
        kafka = service_process(s.run_dir, "kafka", hint)
        before = (cpu_s(relay_process), tree_cpu_s(postgres), cpu_s(kafka))
        started = time.perf_counter()
        stats = relay_pending(conn, producer, topic, schema_id, schema)
        relay_s = time.perf_counter() - started
        cpu = {"relay_process": cpu_s(relay_process) - before[0],
               "postgres": cpu_delta_s(before[1], tree_cpu_s(postgres)),
               "kafka_broker": cpu_s(kafka) - before[2]}
    assert stats.sent == args.events, stats
    relay_rate = args.events / relay_s
    raw = producer_performance(s, perf_topic, args.events, size)
    delete_scratch(ctx, [topic, perf_topic], [f"{topic}-value"])
    print(json.dumps({
        "events": args.events, "avg_record_bytes": size, "relay_seconds": round(relay_s, 2),
        "relay_events_per_s": round(relay_rate), "producer_performance": raw,
        "ratio_to_raw": round(relay_rate / raw["records_per_s"], 3),
        "relay_phase_seconds": stats.as_extra()["phase_seconds"],
        "cpu_us_per_event": {name: round(seconds / args.events * 1e6, 1)
                             for name, seconds in cpu.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
