"""Retention and replay on a scratch database and topic: the retention deletes only published
events and raw pages older than the cutoff, in batches; a replay by event ids or by ingest window
makes published events pending again and the relay sends them once more. Both DAGs run through the
real scheduler."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from include import names
from include.maintenance import mark_for_replay, prune_staging
from include.provisioning import TopicSpec, ensure_topic
from include.relay.avro import decode, load_parsed_schema
from local_stack.airflow_api import AirflowApi
from local_stack.services import kafka_client, pg_connect
from tests.integration.relay_support import EVENTS_SQL, read_topic

NOW = datetime.now(UTC)
OLD, RECENT = NOW - timedelta(days=10), NOW - timedelta(days=1)


@pytest.fixture
def outbox(stack, scratch_db):
    """The scratch outbox and raw pages emptied: ids grow with creation time there, as the
    retention's walk expects, only if the backdated rows of a test come before any other."""
    with pg_connect(stack, scratch_db) as conn:
        conn.execute("DELETE FROM staging.user_events")
        conn.execute("DELETE FROM staging.users_raw")
        yield conn


def _events(conn, count: int, created_at: datetime, published_at: datetime | None = None,
            failed: bool = False, window_start: datetime | None = None) -> list[int]:
    ids = [r[0] for r in conn.execute(EVENTS_SQL, (count,)).fetchall()]
    conn.execute("UPDATE staging.user_events SET created_at = %s, published_at = %s, "
                 "failed_at = CASE WHEN %s THEN now() END, window_start = %s WHERE id = ANY(%s)",
                 (created_at, published_at, failed, window_start, ids))
    return ids


def _raw_pages(conn, count: int, fetched_at: datetime) -> list[int]:
    return [conn.execute(
        "INSERT INTO staging.users_raw (seed, page, window_start, window_end, results, response, "
        "fetched_at) VALUES (%s, 1, now(), now(), 0, '{}', %s) RETURNING id",
        (uuid.uuid4().hex, fetched_at)).fetchone()[0] for _ in range(count)]


def _left(conn, table: str, ids: list[int]) -> set[int]:
    return {r[0] for r in conn.execute(f"SELECT id FROM {table} WHERE id = ANY(%s)", (ids,))}


def test_retention_deletes_only_old_published_events_and_old_raw_pages(outbox):
    conn = outbox
    old_published = _events(conn, 25, OLD, published_at=OLD)
    old_pending = _events(conn, 3, OLD)
    old_failed = _events(conn, 2, OLD, failed=True)
    recent_published = _events(conn, 4, RECENT, published_at=RECENT)
    old_pages, new_pages = _raw_pages(conn, 7, OLD), _raw_pages(conn, 2, RECENT)

    pruned = prune_staging(conn, timedelta(days=7), batch_size=10)
    assert (pruned.events_deleted, pruned.raw_pages_deleted) == (25, 7)
    assert pruned.batches >= 4  # the ids were walked in batches of 10
    assert _left(conn, "staging.user_events", old_published) == set()
    kept = old_pending + old_failed + recent_published
    assert _left(conn, "staging.user_events", kept) == set(kept)
    assert _left(conn, "staging.users_raw", old_pages + new_pages) == set(new_pages)
    assert prune_staging(conn, timedelta(days=7)).events_deleted == 0


def test_a_replay_needs_a_range(outbox):
    with pytest.raises(ValueError, match="needs an event id range or an ingest window"):
        mark_for_replay(outbox)


def test_retention_dag_prunes_and_reports_its_counts(stack, scratch_db, outbox):
    conn = outbox
    old = _events(conn, 5, OLD, published_at=OLD)
    api = AirflowApi(stack)
    api.wait_for_dag(names.RETENTION_DAG_ID)
    since = datetime.now(UTC)
    api.set_paused(names.RETENTION_DAG_ID, False)
    try:
        run = api.trigger(names.RETENTION_DAG_ID,
                          conf={"database": scratch_db, "retention_days": 7})
        (finished,) = api.wait_for_runs(names.RETENTION_DAG_ID, {run["dag_run_id"]})
    finally:
        api.set_paused(names.RETENTION_DAG_ID, True)
    assert finished["state"] == "success", finished
    assert _left(conn, "staging.user_events", old) == set()
    # Unpausing may also start the day's scheduled run; this run's event is the one to read.
    (event,) = api.asset_events(names.RETENTION_DAG_ID, since=since,
                                source_run_id=run["dag_run_id"])
    assert event["extra"]["events_deleted"] >= 5 and "cutoff" in event["extra"]


def test_replay_dag_republishes_an_id_range_then_a_window(stack, scratch_db, outbox):
    conn = outbox
    topic = f"replay-{uuid.uuid4().hex[:6]}"
    ensure_topic(kafka_client(stack.settings), TopicSpec(topic, 3))
    window = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    by_id = _events(conn, 30, RECENT, published_at=RECENT)
    by_window = _events(conn, 12, RECENT, published_at=RECENT, window_start=window)
    failed = _events(conn, 1, RECENT, failed=True, window_start=window)
    api = AirflowApi(stack)
    api.wait_for_dag(names.REPLAY_DAG_ID)
    api.set_paused(names.REPLAY_DAG_ID, False)
    try:
        runs = [api.trigger(names.REPLAY_DAG_ID, conf={
            "database": scratch_db, "topic": topic,
            "first_event_id": by_id[10], "last_event_id": by_id[19]})]
        api.wait_for_runs(names.REPLAY_DAG_ID, {runs[0]["dag_run_id"]})
        runs.append(api.trigger(names.REPLAY_DAG_ID, conf={
            "database": scratch_db, "topic": topic, "window_start": window.isoformat(),
            "window_end": (window + timedelta(minutes=1)).isoformat()}))
        finished = api.wait_for_runs(names.REPLAY_DAG_ID, {r["dag_run_id"] for r in runs})
    finally:
        api.set_paused(names.REPLAY_DAG_ID, True)
    assert [r["state"] for r in finished] == ["success", "success"], finished
    schema = load_parsed_schema()
    sent = sorted(decode(m.value(), schema)["event_id"] for m in read_topic(stack, topic))
    assert sent == sorted(by_id[10:20] + by_window)  # each once; the failed event is not sent
    unpublished = conn.execute("SELECT count(*) FROM staging.user_events WHERE id = ANY(%s) AND "
                               "published_at IS NULL", (by_id + by_window,)).fetchone()[0]
    assert unpublished == 0
    assert conn.execute("SELECT published_at FROM staging.user_events WHERE id = %s",
                        (failed[0],)).fetchone()[0] is None
