"""What the tests that run the whole pipeline through the real scheduler check: the windows'
staged users, their outbox events, their Cassandra rows, and that every DAG run succeeded."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from include import names
from include.ingest.window import IngestWindow
from include.stream.query import query_health, read_heartbeat
from include.stream.verify import rows_by_user_ids
from local_stack.airflow_api import AirflowApi, airflow_cli
from local_stack.cli import stream_query_dir
from local_stack.services import Context, cassandra_session, kafka_client, pg_connect
from ops.pipeline_status import kafka_end_offsets
from tests.pipeline_data import messages_since

PIPELINE = names.PIPELINE_DAG_IDS
INGEST, RELAY, STREAM = PIPELINE
LANDING_TIMEOUT_S = 900


def unpause(api: AirflowApi, *dag_ids: str) -> None:
    for dag_id in dag_ids:
        api.wait_for_dag(dag_id)
        api.set_paused(dag_id, False)


def pause(api: AirflowApi, *dag_ids: str) -> None:
    for dag_id in dag_ids:
        api.set_paused(dag_id, True)


def outbox_events(stack, windows: list[IngestWindow]) -> dict[str, list[int]]:
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


def landed_event_ids(stack, user_ids: list[str]) -> dict[str, int]:
    cluster, session = cassandra_session(stack.settings)
    try:
        return {str(row.user_id): row.event_id for row in rows_by_user_ids(
            session, f"{names.CASSANDRA_KEYSPACE}.users", "user_id, event_id", user_ids)}
    finally:
        cluster.shutdown()


def wait_until_landed(stack, events: dict[str, list[int]]) -> dict[str, int]:
    deadline = time.monotonic() + LANDING_TIMEOUT_S
    while True:
        landed = landed_event_ids(stack, list(events))
        if len(landed) == len(events):
            return landed
        assert time.monotonic() < deadline, (
            f"{len(events) - len(landed)} of {len(events)} staged users never reached Cassandra")
        time.sleep(10)


def runs_since(api: AirflowApi, dag_id: str, since: datetime) -> list[dict]:
    return [r for r in api.runs(dag_id, order_by="-start_date")
            if r["start_date"] and datetime.fromisoformat(r["start_date"]) >= since]


def assert_exactly_once(events: dict[str, list[int]], landed: dict[str, int]) -> None:
    assert set(landed) == set(events)
    multiple = {u: ids for u, ids in events.items() if len(ids) != 1}
    assert not multiple, f"users with other than one outbox event: {list(multiple.items())[:5]}"
    wrong = {u for u, (event_id,) in events.items() if landed[u] != event_id}
    assert not wrong, f"rows that did not come from the user's event: {sorted(wrong)[:5]}"


def assert_runs_succeeded(api: AirflowApi, dag_id: str, started: datetime,
                           settled_from: datetime) -> None:
    """Every run since `started` succeeded. A run still in flight passes only if it was queued
    after the pipeline began its final settle: a safety-net or late asset run that the pause
    then held, which cannot have carried the test's data (the settle saw it finish)."""
    runs = runs_since(api, dag_id, started)
    finished = [r for r in runs if r["state"] in {"success", "failed"}]
    in_flight = [r for r in runs if r not in finished]
    assert finished and all(r["state"] == "success" for r in finished), \
        api.explain_failures(dag_id, finished) or (dag_id, runs)
    early = [r for r in in_flight if datetime.fromisoformat(r["queued_at"]) < settled_from]
    assert not early, api.explain_failures(dag_id, early) or (dag_id, early)


def random_windows(count: int) -> list[IngestWindow]:
    """`count` consecutive one-minute windows at a random point of 2025: windows no other run
    (a scheduled one, another test's) has ingested."""
    base = datetime(2025, 6, 1, tzinfo=UTC) + timedelta(minutes=random.randrange(400_000))
    return [IngestWindow(INGEST, base + timedelta(minutes=i), base + timedelta(minutes=i + 1))
            for i in range(count)]


def backfill(stack, windows: list[IngestWindow]) -> None:
    """Backfills the ingest windows (their DAGs unpaused: a paused DAG's backfill runs queue no
    task); returns once the backfill's runs are created."""
    wait_for_no_running_backfill(AirflowApi(stack))
    result = airflow_cli(stack, "backfill", "create", "--dag-id", INGEST,
                         "--from-date", windows[0].start.isoformat(),
                         "--to-date", windows[-1].start.isoformat())
    assert result.returncode == 0, result.stdout + result.stderr


def wait_for_no_running_backfill(api: AirflowApi, timeout_s: float = 180) -> None:
    """Airflow runs one backfill per DAG, and the scheduler marks one complete a loop or more
    after its last run ended: an earlier test's backfill may still count as running."""
    deadline = time.monotonic() + timeout_s
    while True:
        recent = api.call("GET", "/backfills", params={"dag_id": INGEST, "order_by": "-id",
                                                        "limit": 10})["backfills"]
        running = [b["id"] for b in recent if b["completed_at"] is None]
        if not running:
            return
        assert time.monotonic() < deadline, f"backfills {running} of {INGEST} still run"
        time.sleep(2)


def wait_for_backfill(api: AirflowApi, started: datetime, count: int,
                      timeout_s: float = 300) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        backfilled = [r for r in runs_since(api, INGEST, started) if r["run_type"] == "backfill"]
        if len(backfilled) == count and all(r["state"] in {"success", "failed"}
                                            for r in backfilled):
            return backfilled
        assert time.monotonic() < deadline, f"backfill did not finish: {backfilled}"
        time.sleep(3)


def run_windows(stack: Context, count: int,
                break_something: Callable[[AirflowApi, datetime], str] | None = None) -> str:
    """Backfills `count` windows with the pipeline unpaused; `break_something` waits for its
    moment and breaks something (a node, the stream query's driver). Checks every staged user of
    the windows landed once, with its event, that each event is on the topic, and that every run
    succeeded. Returns what was broken."""
    api = AirflowApi(stack)
    windows = random_windows(count)
    offsets = kafka_end_offsets(kafka_client(stack.settings, names.KAFKA_STATUS_PRINCIPAL),
                                names.USERS_TOPIC)
    started = datetime.now(UTC)
    broken = ""
    unpause(api, RELAY, STREAM, INGEST)
    try:
        backfill(stack, windows)
        if break_something:
            broken = break_something(api, started)
        backfilled = wait_for_backfill(api, started, count, timeout_s=900)
        api.pause_when_idle(INGEST)
        events = outbox_events(stack, windows)
        landed = wait_until_landed(stack, events)
        settled_from = datetime.now(UTC)
        api.settle(*PIPELINE, timeout_s=LANDING_TIMEOUT_S)
    finally:
        pause(api, *PIPELINE)
    assert [r["state"] for r in backfilled] == ["success"] * count
    assert len(events) == count * 500
    assert_exactly_once(events, landed)
    for dag_id in PIPELINE:
        assert_runs_succeeded(api, dag_id, started, settled_from)
    on_topic = Counter(event_id for event_id, *_ in messages_since(stack, offsets))
    lost = [ids[0] for ids in events.values() if ids[0] not in on_topic]
    assert not lost, f"{len(lost)} events never reached the topic, e.g. {lost[:5]}"
    return broken


def stream_query_runs(stack: Context) -> bool:
    """True while the pipeline's long-lived stream query runs (its heartbeat is fresh)."""
    return query_health(read_heartbeat(stream_query_dir(stack.settings)))[0]
