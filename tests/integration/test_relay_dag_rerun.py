"""Rerunning a failed relay through the real scheduler: Kafka is stopped while `relay_user_events`
publishes a large outbox, the task fails, and once Kafka is back a REST clear (dry_run false)
reruns it. Every event ends up on the topic, every one marked published, and the
batches acknowledged before the outage are not sent again."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from confluent_kafka import Consumer, TopicPartition

from include import names
from include.dag_defaults import RELAY_BATCH_SIZE
from include.relay.avro import decode, load_parsed_schema
from local_stack import processes
from local_stack.airflow_api import AirflowApi
from local_stack.cli import start_service, wait_healthy
from local_stack.services import kafka_client, pg_connect
from local_stack.topology import by_name
from ops.pipeline_status import kafka_end_offsets
from tests.integration.test_relay_dag import ingest_window_events

pytestmark = pytest.mark.lifecycle  # stops Kafka: runs after the tests that need it steadily

DAG_ID, TASK_ID = names.RELAY_DAG_ID, "relay_outbox"
EVENTS = 200_000  # long enough a run (~10 s or more) to stop the broker in the middle of it
# The events are the pipeline's own: one ingest run of a past window stages them.


def _event_ids_since(stack, topic: str, start: dict[int, int], schema) -> Counter:
    kafka = kafka_client(stack.settings)
    ends = kafka_end_offsets(kafka, topic)
    consumer = Consumer({**kafka, "group.id": "rerun-check", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, p, start.get(p, 0)) for p in ends])
        seen: Counter = Counter()
        position = dict(start)
        while any(position.get(p, 0) < end for p, end in ends.items()):
            batch = consumer.consume(10_000, timeout=10)
            assert batch, f"the topic stopped short of its end offsets {ends}: at {position}"
            for message in batch:
                assert message.error() is None, message.error()
                seen[decode(message.value(), schema)["event_id"]] += 1
                position[message.partition()] = message.offset() + 1
        return seen
    finally:
        consumer.close()


def test_relay_failed_by_a_broker_outage_is_cleared_and_completes_exactly(stack):
    api = AirflowApi(stack)
    api.wait_for_dag(DAG_ID)
    schema = load_parsed_schema()

    def published() -> int:
        with pg_connect(stack, "userstream") as conn:
            return conn.execute("SELECT count(*) FROM staging.user_events WHERE id = ANY(%s) "
                                "AND published_at IS NOT NULL", (ids,)).fetchone()[0]

    kafka = by_name("kafka")
    api.set_paused(DAG_ID, False)
    try:
        # The pipeline relays what its outbox already holds first, then stays idle, paused.
        api.settle(DAG_ID, timeout_s=600)
    finally:
        api.set_paused(DAG_ID, True)
    ids = ingest_window_events(stack, api, EVENTS)
    start_offsets = kafka_end_offsets(kafka_client(stack.settings),
                                      names.USERS_TOPIC)
    api.set_paused(DAG_ID, False)
    try:
        api.trigger(DAG_ID)
        # Unpausing may also have started a safety-net run; whichever run relays the events is
        # the one the outage fails (one run at a time), so that is the run to clear.
        deadline = time.monotonic() + 300
        while published() == 0:
            assert time.monotonic() < deadline, "no relay run published anything"
            time.sleep(0.2)
        (run_id,) = [r["dag_run_id"] for r in api.runs(DAG_ID, order_by="-start_date")
                     if r["state"] == "running"]
        processes.stop(stack.settings.run_dir, "kafka", timeout_s=30)
        try:
            api.wait_for_task(DAG_ID, run_id, TASK_ID, {"up_for_retry", "failed"}, 300,
                              never=frozenset({"success"}))
            published_during = published()
            assert 0 < published_during < len(ids)
        finally:
            start_service(kafka, stack)
            wait_healthy([kafka], stack)

        assert api.clear_task(DAG_ID, run_id, TASK_ID) == [TASK_ID]
        ti = api.wait_for_task(DAG_ID, run_id, TASK_ID, {"success"}, 300,
                               never=frozenset({"failed"}))
        assert ti["try_number"] >= 2
    finally:
        api.set_paused(DAG_ID, True)

    assert published() == len(ids), "events left unpublished after the rerun"
    on_topic = _event_ids_since(stack, names.USERS_TOPIC, start_offsets, schema)
    assert set(ids) <= set(on_topic), f"{len(set(ids) - set(on_topic))} events were lost"
    # A resend can only be the one batch in flight when the broker stopped (written, but its
    # acknowledgement never arrived, so it stayed unpublished and went again).
    resent = sum(n - 1 for n in on_topic.values())
    assert resent <= RELAY_BATCH_SIZE, f"{resent} messages were sent twice"
