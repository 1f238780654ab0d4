"""The stream hop's long-lived query through the real scheduler: a stream DAG run starts it once
and it serves the relay runs that follow; its driver killed with SIGKILL mid-batch is restarted by
Airflow's retry from its checkpoint, with nothing lost or landed twice; `make stop-stream` (and
`make down`, which calls the same function) stops it between two micro-batches.

The tests run in file order: the first starts the query, the second kills it, the last stops it."""

from __future__ import annotations

import fcntl
import os
import signal
import time
from datetime import UTC, datetime

from include import names
from include.stream.query import STOPPED, query_health, read_heartbeat
from local_stack.airflow_api import AirflowApi, as_dict
from local_stack.cli import stop_query, stream_query_dir
from tests.cluster.nodes import batch_in_flight, wait_until
from tests.integration.alert_support import alerts_for
from tests.pipeline_checks import STREAM, run_windows, runs_since

QUERY_DAG, QUERY_TASK = names.STREAM_QUERY_DAG_ID, names.STREAM_QUERY_TASK_ID


def _query_run(api: AirflowApi, since: datetime) -> tuple[dict, dict]:
    """The one supervisor run since `since`, and its task instance."""
    runs = runs_since(api, QUERY_DAG, since)
    assert len(runs) == 1, [(r["dag_run_id"], r["state"]) for r in runs]
    ti = as_dict(api.task_instances.get_task_instance(QUERY_DAG, runs[0]["dag_run_id"],
                                                      QUERY_TASK))
    return runs[0], ti


def _landed_facts(api: AirflowApi, since: datetime) -> list[dict]:
    return [event["extra"] for event in api.asset_events(STREAM, since)]


def test_one_query_started_once_serves_the_relay_runs_that_follow(stack):
    api = AirflowApi(stack)
    folder = stream_query_dir(stack.settings)
    stop_query(folder)  # a query an earlier test left running: this test sees its start
    started = datetime.now(UTC)
    for _ in range(2):  # one after the other: two relay runs, two stream runs
        run_windows(stack, 1)
    run, ti = _query_run(api, started)
    assert run["state"] == "running" and ti["state"] == "running" and ti["try_number"] == 1
    healthy, detail = query_health(read_heartbeat(folder))
    assert healthy, detail
    streams = [r for r in runs_since(api, STREAM, started) if r["run_type"] == "asset_triggered"]
    assert len(streams) >= 2 and {r["state"] for r in streams} == {"success"}, streams
    # Each run verified the ledger of the batches that read its relay run's offsets.
    facts = [f for f in _landed_facts(api, started) if f["messages"]]
    assert sum(f["rows_written"] for f in facts) >= 2 * 500, facts
    assert all(f["messages"] == f["rows_written"] for f in facts), facts


def test_a_driver_killed_mid_batch_is_restarted_from_its_checkpoint_losing_nothing(stack):
    api = AirflowApi(stack)
    folder = stream_query_dir(stack.settings)
    wait_until(lambda: query_health(read_heartbeat(folder))[0], "the stream query running",
               timeout_s=300, poll_s=2)
    started = datetime.now(UTC)
    killed: list[int] = []

    def kill_driver(_api: AirflowApi, _started: datetime) -> str:
        wait_until(lambda: batch_in_flight(stack), "the stream query in a micro-batch",
                   timeout_s=600, poll_s=0.2)
        driver = read_heartbeat(folder)["driver_pid"]
        os.kill(driver, signal.SIGKILL)
        killed.append(driver)
        return f"driver {driver}"

    run_windows(stack, 2, kill_driver)
    heartbeat = read_heartbeat(folder)
    assert query_health(heartbeat)[0] and heartbeat["driver_pid"] != killed[0], heartbeat
    runs = [r for r in api.runs(QUERY_DAG, order_by="-start_date") if r["state"] == "running"]
    assert len(runs) == 1, runs
    ti = as_dict(api.task_instances.get_task_instance(QUERY_DAG, runs[0]["dag_run_id"],
                                                      QUERY_TASK))
    assert ti["state"] == "running" and ti["try_number"] >= 2, ti
    assert alerts_for(stack, runs[0]["dag_run_id"]), "the query's failure sent no alert"
    assert runs_since(api, QUERY_DAG, started) == []  # restarted by the retry, not a new run


def test_stop_stream_stops_the_query_between_micro_batches(stack):
    api = AirflowApi(stack)
    folder = stream_query_dir(stack.settings)
    wait_until(lambda: query_health(read_heartbeat(folder))[0], "the stream query running",
               timeout_s=300, poll_s=2)
    (run,) = [r for r in api.runs(QUERY_DAG, order_by="-start_date") if r["state"] == "running"]
    said = stop_query(folder)
    assert said.startswith("stopped the stream query"), said
    heartbeat = read_heartbeat(folder)
    assert heartbeat["state"] == STOPPED and heartbeat["reason"] == "stop requested", heartbeat
    (finished,) = api.wait_for_runs(QUERY_DAG, {run["dag_run_id"]}, timeout_s=120)
    assert finished["state"] == "success", finished
    deadline = time.monotonic() + 30
    with (folder / "lock").open("w") as lock:  # the driver let go of the checkpoint
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "the stopped query still holds its lock"
                time.sleep(1)
    assert not (folder / "stop").exists()
