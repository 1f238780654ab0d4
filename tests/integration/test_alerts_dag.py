"""Every hop alerts through the scheduler, into the local alert inbox (`alerts_webhook`): a task
that finally fails in the ingest and relay DAGs, relay events that failed encoding, and new dead
letters in a stream run (the stream's failed landing checks: test_stream_dag). Each alert names
its hop, the problem, counts and examples. Runs that move data use a scratch database, topic and
keyspace; the failing ingest run stages nothing."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from include import names
from include.alerts import EVENTS_FAILED_ENCODING, NEW_DEAD_LETTERS, TASK_FAILED
from include.ingest.window import IngestWindow
from include.provisioning import TopicSpec, ensure_topic
from local_stack.airflow_api import AirflowApi
from local_stack.randomuser_api import set_faults
from local_stack.services import cassandra_session, kafka_client, pg_connect
from local_stack.stream_harness import produce_raw, produce_users
from tests.integration.alert_support import wait_for_alert
from tests.integration.relay_support import EVENTS_SQL, fail_pending_events

RUN_TIMEOUT_S = 900


def _run_once(api: AirflowApi, dag_id: str, **trigger) -> tuple[str, dict]:
    api.wait_for_dag(dag_id)
    api.set_paused(dag_id, False)
    try:
        run = api.trigger(dag_id, **trigger)
        (finished,) = api.wait_for_runs(dag_id, {run["dag_run_id"]}, RUN_TIMEOUT_S)
    finally:
        api.set_paused(dag_id, True)
    return run["dag_run_id"], finished


def test_an_ingest_window_that_finally_fails_alerts_with_its_error(stack):
    api = AirflowApi(stack)
    api.wait_for_dag(names.INGEST_DAG_ID)
    logical_date = datetime(2026, 1, 2, tzinfo=UTC) + timedelta(minutes=random.randrange(300_000))
    # Created while the DAG is paused, the run waits: its window (and so its seed) is known
    # before its task starts.
    run = api.trigger(names.INGEST_DAG_ID, logical_date=logical_date, conf={"users": 10})
    window = IngestWindow(names.INGEST_DAG_ID, datetime.fromisoformat(run["data_interval_start"]),
                          datetime.fromisoformat(run["data_interval_end"]))
    # Every try of this window gets one user fewer than it asked for: a wrong answer no retry
    # fixes. Scheduled runs meanwhile (other seeds) are served as usual.
    set_faults(stack.settings.randomuser_url, mode="short", count=1000, seed=window.seed)
    api.set_paused(names.INGEST_DAG_ID, False)
    try:
        (finished,) = api.wait_for_runs(names.INGEST_DAG_ID, {run["dag_run_id"]}, RUN_TIMEOUT_S)
    finally:
        api.set_paused(names.INGEST_DAG_ID, True)
        set_faults(stack.settings.randomuser_url)
    assert finished["state"] == "failed"
    alert = wait_for_alert(stack, run["dag_run_id"], TASK_FAILED)
    assert (alert["hop"], alert["dag_id"], alert["task_id"]) == (
        "ingest", names.INGEST_DAG_ID, "ingest_window")
    assert "asked for 10 users, got 9" in alert["error"]
    assert alert["try_number"] == 4  # alerted once, after the last retry


@pytest.fixture
def scratch_outbox(stack, scratch_db):
    """The scratch database's outbox emptied of what earlier tests left, and a scratch topic."""
    topic = f"alerts-relay-{uuid.uuid4().hex[:6]}"
    ensure_topic(kafka_client(stack.settings), TopicSpec(topic, 3))
    with pg_connect(stack, scratch_db) as conn:
        fail_pending_events(conn)
        yield conn, topic


def test_relay_events_that_fail_encoding_alert_with_their_ids_and_reasons(
        stack, scratch_db, scratch_outbox):
    conn, topic = scratch_outbox
    good = [r[0] for r in conn.execute(EVENTS_SQL, (5,)).fetchall()]
    bad = conn.execute("INSERT INTO staging.user_events (user_id, content_hash, payload) VALUES "
                       "(gen_random_uuid(), 'x', '{\"age\": \"not a number\"}') RETURNING id"
                       ).fetchone()[0]
    run_id, finished = _run_once(AirflowApi(stack), names.RELAY_DAG_ID,
                                 conf={"topic": topic, "database": scratch_db})
    assert finished["state"] == "success", finished
    alert = wait_for_alert(stack, run_id, EVENTS_FAILED_ENCODING)
    assert alert["hop"] == "relay" and alert["task_id"] == "relay_outbox"
    assert alert["counts"] == {"events_failed": 1, "events_sent": len(good)}
    (example,) = alert["examples"]
    assert example["event_id"] == bad and "cannot encode" in example["reason"]


def test_a_relay_to_a_missing_topic_fails_at_once_and_alerts(stack, scratch_db, scratch_outbox):
    conn, _ = scratch_outbox
    conn.execute(EVENTS_SQL, (1,))
    missing = f"no-such-topic-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    run_id, finished = _run_once(AirflowApi(stack), names.RELAY_DAG_ID,
                                 conf={"topic": missing, "database": scratch_db})
    assert finished["state"] == "failed"
    alert = wait_for_alert(stack, run_id, TASK_FAILED)
    assert alert["hop"] == "relay" and alert["try_number"] == 1  # no retry creates a topic
    assert f"Kafka topic {missing!r} does not exist" in alert["error"]
    assert time.monotonic() - started < 300


def test_new_dead_letters_in_a_stream_run_alert_with_their_offsets_and_reasons(stack):
    topic, keyspace = f"alerts-stream-{uuid.uuid4().hex[:6]}", f"alerts_{uuid.uuid4().hex[:8]}"
    users = produce_users(stack.settings, topic, 30, seed=int(time.time()))
    produce_raw(stack.settings, topic, [(b"poison", b"\x01not a confluent frame")])
    try:
        run_id, finished = _run_once(
            AirflowApi(stack), names.STREAM_DAG_ID,
            conf={"topic": topic, "keyspace": keyspace, "stop_when_idle_s": 0,
                  "verify_user_ids": list(users)[:5], "landing_timeout_s": 120})
        assert finished["state"] == "success", finished
        alert = wait_for_alert(stack, run_id, NEW_DEAD_LETTERS)
    finally:
        cluster, session = cassandra_session(stack.settings, timeout=30)
        try:
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        finally:
            cluster.shutdown()
    assert alert["hop"] == "stream" and alert["task_id"] == "run_stream_job"
    assert alert["counts"] == {"dead_letters": 1, "messages": 31, "rows_written": 30}
    (example,) = alert["examples"]
    assert example["reason"] == "magic byte is 0x01, expected 0x00"
    assert example["offset"] >= 0 and example["partition"] in (0, 1, 2)
