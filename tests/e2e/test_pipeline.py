"""The three hops chained through the real scheduler, by asset events alone: scheduled (and
backfilled) ingest windows are relayed and streamed until every staged user is a Cassandra row,
each exactly once (the row carries the event id of the user's single outbox event)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from include import names
from include.assets import CASSANDRA_USERS, STAGED_USER_EVENTS, USERS_TOPIC
from include.ingest.window import IngestWindow
from local_stack.airflow_api import AirflowApi
from tests.pipeline_checks import (
    INGEST,
    LANDING_TIMEOUT_S,
    PIPELINE,
    RELAY,
    STREAM,
    assert_exactly_once,
    assert_runs_succeeded,
    backfill,
    outbox_events,
    pause,
    random_windows,
    runs_since,
    unpause,
    wait_for_backfill,
    wait_until_landed,
)


def test_scheduled_windows_flow_to_cassandra_by_asset_events_alone(stack):
    api = AirflowApi(stack)
    started = datetime.now(UTC)
    unpause(api, RELAY, STREAM, INGEST)
    try:
        deadline = time.monotonic() + 300
        while len([r for r in runs_since(api, INGEST, started)
                           if r["run_type"] == "scheduled" and r["state"] == "success"]) < 2:
            assert time.monotonic() < deadline, "the scheduler ran fewer than 2 ingest windows"
            time.sleep(5)
        api.pause_when_idle(INGEST)
    finally:
        pause(api, INGEST)
    try:
        # Each stream run stays up until idle, and asset events may have queued a few of them.
        api.settle(*PIPELINE, timeout_s=600)
        scheduled = [r for r in runs_since(api, INGEST, started) if r["run_type"] == "scheduled"]
        windows = [IngestWindow(INGEST, datetime.fromisoformat(r["data_interval_start"]),
                                datetime.fromisoformat(r["data_interval_end"]))
                   for r in scheduled if r["state"] == "success"]
        events = outbox_events(stack, windows)
        assert len(events) >= 2 * 500
        landed = wait_until_landed(stack, events)
        settled_from = datetime.now(UTC)
        api.settle(*PIPELINE, timeout_s=LANDING_TIMEOUT_S)
    finally:
        pause(api, RELAY, STREAM)

    assert_exactly_once(events, landed)
    for dag_id in PIPELINE:
        assert_runs_succeeded(api, dag_id, started, settled_from)
    for dag_id in (RELAY, STREAM):
        runs = runs_since(api, dag_id, started)
        assert any(r["run_type"] == "asset_triggered" for r in runs), \
            (dag_id, [(r["dag_run_id"], r["run_type"], r["state"]) for r in runs])

    assets = {a["uri"]: a for a in api.call("GET", "/assets", params={"limit": 100})["assets"]}
    lineage = {uri: ({t["dag_id"] for t in assets[uri]["producing_tasks"]},
                     {d["dag_id"] for d in assets[uri]["scheduled_dags"]})
               for uri in (STAGED_USER_EVENTS.uri, USERS_TOPIC.uri, CASSANDRA_USERS.uri)}
    # The replay DAG publishes to the topic through the relay's code, by hand.
    assert lineage == {STAGED_USER_EVENTS.uri: ({INGEST}, {RELAY}),
                       USERS_TOPIC.uri: ({RELAY, names.REPLAY_DAG_ID}, {STREAM}),
                       CASSANDRA_USERS.uri: ({STREAM}, set())}


def test_backfilled_windows_land_in_cassandra_exactly_once(stack):
    api = AirflowApi(stack)
    windows = random_windows(5)
    started = datetime.now(UTC)
    unpause(api, RELAY, STREAM, INGEST)  # a paused DAG's backfill runs queue no task
    try:
        backfill(stack, windows)
        backfilled = wait_for_backfill(api, started, len(windows))
        api.pause_when_idle(INGEST)
        assert sorted(r["state"] for r in backfilled) == ["success"] * 5
        events = outbox_events(stack, windows)
        assert len(events) == 5 * 500
        landed = wait_until_landed(stack, events)
        settled_from = datetime.now(UTC)
        api.settle(*PIPELINE, timeout_s=LANDING_TIMEOUT_S)
    finally:
        pause(api, *PIPELINE)
    assert_exactly_once(events, landed)
    for dag_id in (RELAY, STREAM):
        assert_runs_succeeded(api, dag_id, started, settled_from)
