"""stream_users_to_cassandra through the real scheduler: a Kafka asset event triggers the Spark
job, the sensor proves the sampled users landed and the Cassandra asset is emitted; a landing
check that fails sends an alert to the local alert inbox with the run's details. Runs that land
test data are given a scratch topic and keyspace as params: the pipeline's own stay untouched."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from include import names
from include.assets import CASSANDRA_USERS, USERS_TOPIC
from include.stream.checkpoint import committed_offsets
from include.stream.job import checkpoint_root
from include.stream.operator import checkpoint_name
from include.stream.verify import missing_user_ids
from local_stack import processes
from local_stack.airflow_api import AirflowApi
from local_stack.cli import start_service, wait_healthy
from local_stack.services import cassandra_session, kafka_client
from local_stack.stream_harness import produce_users
from local_stack.topology import by_name
from ops.pipeline_status import kafka_end_offsets
from tests.integration.alert_support import wait_for_alert

DAG_ID = names.STREAM_DAG_ID
STREAM_TASK_ID = "run_stream_job"
RUN_TIMEOUT_S = 900


def asset_id(api: AirflowApi, uri: str) -> int:
    (asset,) = [a for a in api.call("GET", "/assets", params={"limit": 100})["assets"]
                if a["uri"] == uri]
    return asset["id"]


def not_landed(stack, keyspace: str, user_ids) -> list[str]:
    cluster, session = cassandra_session(stack.settings)
    try:
        return missing_user_ids(session, f"{keyspace}.users", list(user_ids))
    finally:
        cluster.shutdown()


@pytest.fixture
def scratch(stack):
    """A scratch topic and keyspace for runs given them as params; the keyspace is dropped."""
    topic, keyspace = f"stream-dag-{uuid.uuid4().hex[:8]}", f"stream_dag_{uuid.uuid4().hex[:8]}"
    yield topic, keyspace
    cluster, session = cassandra_session(stack.settings, timeout=30)
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        cluster.shutdown()


def test_kafka_asset_event_triggers_a_run_that_emits_the_cassandra_asset(stack):
    """The pipeline's own topic and keyspace, with nothing of the test's in them: the run lands
    whatever the relay published, and its facts go into the Cassandra asset."""
    api = AirflowApi(stack)
    api.wait_for_dag(DAG_ID)
    api.set_paused(DAG_ID, False)
    try:
        # Earlier asset events and the safety net drain the topic first.
        api.settle(DAG_ID, timeout_s=RUN_TIMEOUT_S)
        newest_first = "-start_date"  # a listing pages: the newest runs, not the first 100
        before = {r["dag_run_id"] for r in api.runs(DAG_ID, order_by=newest_first)}
        # The run the asset event triggers; any other (safety-net) run is left to finish.
        api.call("POST", "/assets/events", json={
            "asset_id": asset_id(api, USERS_TOPIC.uri),
            "extra": {"sample_user_ids": [], "events_sent": 0}})
        deadline = time.monotonic() + 120
        while not (new := [r for r in api.runs(DAG_ID, order_by=newest_first)
                           if r["dag_run_id"] not in before
                           and r["run_type"] == "asset_triggered"]):
            assert time.monotonic() < deadline, "the asset event triggered no run"
            time.sleep(2)
        (finished,) = api.wait_for_runs(DAG_ID, {new[0]["dag_run_id"]}, RUN_TIMEOUT_S)
        assert finished["state"] == "success", finished
        assert finished["run_type"] == "asset_triggered"
        api.settle(DAG_ID, timeout_s=RUN_TIMEOUT_S)
    finally:
        api.set_paused(DAG_ID, True)
    events = api.call("GET", "/assets/events", params={
        "asset_id": asset_id(api, CASSANDRA_USERS.uri), "source_run_id": new[0]["dag_run_id"]})
    (event,) = events["asset_events"]
    assert event["extra"]["rows_written"] >= 0 and "end_offsets" in event["extra"]


def test_missing_records_send_an_alert_naming_the_keys(stack):
    api = AirflowApi(stack)
    api.wait_for_dag(DAG_ID)
    absent = str(uuid.uuid4())
    api.set_paused(DAG_ID, False)
    try:
        api.settle(DAG_ID, timeout_s=RUN_TIMEOUT_S)
        run = api.trigger(DAG_ID, conf={"verify_user_ids": [absent], "landing_timeout_s": 20})
        (finished,) = api.wait_for_runs(DAG_ID, {run["dag_run_id"]}, RUN_TIMEOUT_S)
    finally:
        api.set_paused(DAG_ID, True)
    assert finished["state"] == "failed"
    alert = wait_for_alert(stack, run["dag_run_id"])
    assert alert["problem"] == "records_missing"
    assert alert["dag_id"] == DAG_ID and alert["task_id"] == "verify_landed"
    assert alert["missing_user_ids"] == [absent]
    assert "1 of 1 sampled user_ids are not in userstream.users" in alert["detail"]
    assert alert["log_url"].startswith("http")


@pytest.mark.lifecycle  # stops Cassandra
def test_unreachable_cassandra_is_reported_as_such_not_as_missing_records(stack, scratch):
    topic, keyspace = scratch
    api = AirflowApi(stack)
    api.wait_for_dag(DAG_ID)
    landed = produce_users(stack.settings, topic, 50, seed=int(time.time()) + 1)
    api.set_paused(DAG_ID, False)
    try:
        api.settle(DAG_ID, timeout_s=RUN_TIMEOUT_S)
        run = api.trigger(DAG_ID, conf={"verify_user_ids": list(landed)[:5],
                                        "landing_timeout_s": 20, "topic": topic,
                                        "keyspace": keyspace, "stop_when_idle_s": 0})
        run_id = run["dag_run_id"]
        (finished,) = api.wait_for_runs(DAG_ID, {run_id}, RUN_TIMEOUT_S)
        assert finished["state"] == "success", finished

        cassandra = by_name("cassandra")
        processes.stop(stack.settings.run_dir, "cassandra", timeout_s=60)
        try:
            # Rerun only the landing check of that run (REST clear is a dry run unless told).
            assert api.clear_task(DAG_ID, run_id, "verify_landed") == ["verify_landed"]
            ti = api.wait_for_task(DAG_ID, run_id, "verify_landed", {"failed", "success"}, 300,
                                   min_try=2)
            assert ti["state"] == "failed"
            alert = wait_for_alert(stack, run_id)
        finally:
            start_service(cassandra, stack)
            wait_healthy([cassandra], stack)
    finally:
        api.set_paused(DAG_ID, True)
    assert alert["problem"] == "cassandra_unreachable"
    assert "is unreachable" in alert["detail"]
    assert alert["task_id"] == "verify_landed" and alert["missing_count"] == 5


def _stream_job_pids(checkpoint: str) -> list[int]:
    """spark-submit's JVM for the DAG's stream job (its command line names our checkpoint)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # spark-class first runs a short-lived launcher JVM with the same arguments: skip it.
        if (cmdline and cmdline[0].endswith(b"java") and checkpoint.encode() in cmdline
                and b"org.apache.spark.launcher.Main" not in cmdline):
            pids.append(int(proc.name))
    return pids


def test_a_killed_spark_job_fails_the_task_and_a_clear_completes_it(stack, scratch):
    topic, keyspace = scratch
    api = AirflowApi(stack)
    api.wait_for_dag(DAG_ID)
    api.set_paused(DAG_ID, False)
    try:
        api.settle(DAG_ID, timeout_s=RUN_TIMEOUT_S)
        users = produce_users(stack.settings, topic, 60_000, seed=int(time.time()) + 2)
        run = api.trigger(DAG_ID, conf={"verify_user_ids": list(users)[-20:],
                                        "landing_timeout_s": 120, "topic": topic,
                                        "keyspace": keyspace})
        run_id = run["dag_run_id"]
        path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{STREAM_TASK_ID}"
        checkpoint = str(checkpoint_root() / checkpoint_name(topic, keyspace))
        deadline = time.monotonic() + 600
        # Only once our task runs is the job on the checkpoint ours (cron runs may go first).
        while (ti := api.call("GET", path))["state"] != "running" or \
                not (pids := _stream_job_pids(checkpoint)):
            assert time.monotonic() < deadline, f"the stream job never started: {ti['state']}"
            time.sleep(0.5)
        # Killed while it starts up or works: either way the run is cut short.
        time.sleep(2)
        killed = 0
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        assert killed, "the stream job ended before it could be killed"
        api.wait_for_task(DAG_ID, run_id, STREAM_TASK_ID, {"up_for_retry", "failed"}, 600,
                          never=frozenset({"success"}), poll_s=1)
        api.clear_task(DAG_ID, run_id, STREAM_TASK_ID, include_downstream=True)
        ti = api.wait_for_task(DAG_ID, run_id, STREAM_TASK_ID, {"success"}, RUN_TIMEOUT_S,
                               never=frozenset({"failed"}), poll_s=3)
        (finished,) = api.wait_for_runs(DAG_ID, {run_id}, RUN_TIMEOUT_S)
        assert finished["state"] == "success", finished
        assert ti["try_number"] >= 2
    finally:
        api.set_paused(DAG_ID, True)
    assert not_landed(stack, keyspace, users) == []


def test_a_run_cut_short_under_a_backlog_fails_as_incomplete_though_sampled_keys_landed(
        stack, scratch):
    """max_run_s=1 ends the job as soon as its first micro-batch (50,000 messages) is done, in
    the second, short of 200,000 on any machine (with 30 s a fast one drained all four batches):
    the relay-reported end offsets are not reached, and the check says by how much."""
    topic, keyspace = scratch
    api = AirflowApi(stack)
    api.wait_for_dag(DAG_ID)
    users = list(produce_users(stack.settings, topic, 200_000, seed=int(time.time()) + 3))
    last = {p: end - 1 for p, end in
            kafka_end_offsets(kafka_client(stack.settings),
                              topic).items()}
    sampled = users[:10]  # the first messages of each partition: in the first micro-batch
    api.set_paused(DAG_ID, False)
    try:
        api.settle(DAG_ID, timeout_s=RUN_TIMEOUT_S)
        run = api.trigger(DAG_ID, conf={"topic": topic, "keyspace": keyspace, "max_run_s": 1,
                                        "verify_user_ids": sampled,
                                        "expected_last_offsets": {str(p): o
                                                                  for p, o in last.items()}})
        (finished,) = api.wait_for_runs(DAG_ID, {run["dag_run_id"]}, RUN_TIMEOUT_S)
    finally:
        api.set_paused(DAG_ID, True)
    assert finished["state"] == "failed"
    alert = wait_for_alert(stack, run["dag_run_id"], "stream_incomplete")
    committed = committed_offsets(checkpoint_root() / checkpoint_name(topic, keyspace), topic)
    short = sum(o + 1 - committed.get(p, 0) for p, o in last.items())
    assert 0 < short < 200_000, committed
    assert alert["counts"]["messages_short"] == short
    assert f"{short:,} message(s) short of the end offsets the relay reported" in alert["detail"]
    assert not_landed(stack, keyspace, sampled) == []
