"""The three hops chained through the real scheduler, by asset events alone: scheduled (and
backfilled) ingest windows are relayed and streamed until every staged user is a Cassandra row,
each exactly once (the row carries the event id of the user's single outbox event)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from include import names
from include.assets import CASSANDRA_USERS, STAGED_USER_EVENTS, USERS_TOPIC
from include.ingest.window import IngestWindow
from include.stream.verify import rows_by_user_ids
from local_stack.airflow_api import AirflowApi, airflow_cli
from local_stack.services import cassandra_session, pg_connect

PIPELINE = names.PIPELINE_DAG_IDS
INGEST, RELAY, STREAM = PIPELINE
LANDING_TIMEOUT_S = 900


def _unpause(api: AirflowApi, *dag_ids: str) -> None:
    for dag_id in dag_ids:
        api.wait_for_dag(dag_id)
        api.set_paused(dag_id, False)


def _pause(api: AirflowApi, *dag_ids: str) -> None:
    for dag_id in dag_ids:
        api.set_paused(dag_id, True)


def _outbox_events(stack, windows: list[IngestWindow]) -> dict[str, list[int]]:
    """user_id -> outbox event ids of the users the windows' API pages returned."""
    with pg_connect(stack, "userstream") as conn:
        rows = conn.execute("""
            WITH window_users AS (
                SELECT DISTINCT (u->'login'->>'uuid')::uuid AS user_id
                FROM staging.users_raw r, jsonb_array_elements(r.response::jsonb->'results') u
                WHERE r.seed = ANY(%s))
            SELECT w.user_id::text, array_agg(e.id ORDER BY e.id)
            FROM window_users w LEFT JOIN staging.user_events e USING (user_id)
            GROUP BY w.user_id""", ([w.seed for w in windows],)).fetchall()
    return {user_id: event_ids for user_id, event_ids in rows}


def _landed_event_ids(stack, user_ids: list[str]) -> dict[str, int]:
    cluster, session = cassandra_session(stack.settings)
    try:
        return {str(row.user_id): row.event_id for row in rows_by_user_ids(
            session, f"{names.CASSANDRA_KEYSPACE}.users", "user_id, event_id", user_ids)}
    finally:
        cluster.shutdown()


def _wait_until_landed(stack, events: dict[str, list[int]]) -> dict[str, int]:
    deadline = time.monotonic() + LANDING_TIMEOUT_S
    while True:
        landed = _landed_event_ids(stack, list(events))
        if len(landed) == len(events):
            return landed
        assert time.monotonic() < deadline, (
            f"{len(events) - len(landed)} of {len(events)} staged users never reached Cassandra")
        time.sleep(10)


def _runs_since(api: AirflowApi, dag_id: str, since: datetime) -> list[dict]:
    return [r for r in api.runs(dag_id, order_by="-start_date")
            if r["start_date"] and datetime.fromisoformat(r["start_date"]) >= since]


def _assert_exactly_once(events: dict[str, list[int]], landed: dict[str, int]) -> None:
    assert set(landed) == set(events)
    multiple = {u: ids for u, ids in events.items() if len(ids) != 1}
    assert not multiple, f"users with other than one outbox event: {list(multiple.items())[:5]}"
    wrong = {u for u, (event_id,) in events.items() if landed[u] != event_id}
    assert not wrong, f"rows that did not come from the user's event: {sorted(wrong)[:5]}"


def _assert_runs_succeeded(api: AirflowApi, dag_id: str, started: datetime,
                           settled_from: datetime) -> None:
    """Every run since `started` succeeded. A run still in flight passes only if it was queued
    after the pipeline began its final settle: a safety-net or late asset run that the pause
    then held, which cannot have carried the test's data (the settle saw it finish)."""
    runs = _runs_since(api, dag_id, started)
    finished = [r for r in runs if r["state"] in {"success", "failed"}]
    in_flight = [r for r in runs if r not in finished]
    assert finished and all(r["state"] == "success" for r in finished), \
        api.explain_failures(dag_id, finished) or (dag_id, runs)
    early = [r for r in in_flight if datetime.fromisoformat(r["queued_at"]) < settled_from]
    assert not early, api.explain_failures(dag_id, early) or (dag_id, early)


def test_scheduled_windows_flow_to_cassandra_by_asset_events_alone(stack):
    api = AirflowApi(stack)
    started = datetime.now(UTC)
    _unpause(api, RELAY, STREAM, INGEST)
    try:
        deadline = time.monotonic() + 300
        while len([r for r in _runs_since(api, INGEST, started)
                           if r["run_type"] == "scheduled" and r["state"] == "success"]) < 2:
            assert time.monotonic() < deadline, "the scheduler ran fewer than 2 ingest windows"
            time.sleep(5)
        api.pause_when_idle(INGEST)
    finally:
        _pause(api, INGEST)
    try:
        # Each stream run stays up until idle, and asset events may have queued a few of them.
        api.settle(*PIPELINE, timeout_s=600)
        scheduled = [r for r in _runs_since(api, INGEST, started) if r["run_type"] == "scheduled"]
        windows = [IngestWindow(INGEST, datetime.fromisoformat(r["data_interval_start"]),
                                datetime.fromisoformat(r["data_interval_end"]))
                   for r in scheduled if r["state"] == "success"]
        events = _outbox_events(stack, windows)
        assert len(events) >= 2 * 500
        landed = _wait_until_landed(stack, events)
        settled_from = datetime.now(UTC)
        api.settle(*PIPELINE, timeout_s=LANDING_TIMEOUT_S)
    finally:
        _pause(api, RELAY, STREAM)

    _assert_exactly_once(events, landed)
    for dag_id in PIPELINE:
        _assert_runs_succeeded(api, dag_id, started, settled_from)
    for dag_id in (RELAY, STREAM):
        runs = _runs_since(api, dag_id, started)
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
    base = datetime(2025, 6, 1, tzinfo=UTC) + timedelta(minutes=random.randrange(400_000))
    windows = [IngestWindow(INGEST, base + timedelta(minutes=i), base + timedelta(minutes=i + 1))
               for i in range(5)]
    started = datetime.now(UTC)
    _unpause(api, RELAY, STREAM, INGEST)  # a paused DAG's backfill runs queue no task
    try:
        result = airflow_cli(stack, "backfill", "create", "--dag-id", INGEST,
                             "--from-date", windows[0].start.isoformat(),
                             "--to-date", windows[-1].start.isoformat())
        assert result.returncode == 0, result.stdout + result.stderr
        deadline = time.monotonic() + 300
        while True:
            backfilled = [r for r in _runs_since(api, INGEST, started)
                          if r["run_type"] == "backfill"]
            if len(backfilled) == 5 and all(r["state"] in {"success", "failed"}
                                            for r in backfilled):
                break
            assert time.monotonic() < deadline, f"backfill did not finish: {backfilled}"
            time.sleep(3)
        api.pause_when_idle(INGEST)
        assert sorted(r["state"] for r in backfilled) == ["success"] * 5
        events = _outbox_events(stack, windows)
        assert len(events) == 5 * 500
        landed = _wait_until_landed(stack, events)
        settled_from = datetime.now(UTC)
        api.settle(*PIPELINE, timeout_s=LANDING_TIMEOUT_S)
    finally:
        _pause(api, *PIPELINE)
    _assert_exactly_once(events, landed)
    for dag_id in (RELAY, STREAM):
        _assert_runs_succeeded(api, dag_id, started, settled_from)
