"""The ingest_users DAG through the real scheduler: `airflow backfill create` over 3 windows, then
the same windows again with reprocessing, which must change nothing."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from include import names
from include.dag_defaults import USERS_PER_WINDOW
from include.ingest.window import IngestWindow
from local_stack.airflow_api import AirflowApi, airflow_cli
from local_stack.services import pg_connect

DAG_ID = names.INGEST_DAG_ID


def _snapshot(ctx, windows: list[IngestWindow]) -> dict[str, tuple]:
    seeds = [w.seed for w in windows]
    with pg_connect(ctx, "userstream") as conn:
        ids = conn.execute("""
            SELECT r.seed, array_agg((u->'login'->>'uuid')::uuid ORDER BY u->'login'->>'uuid')
            FROM staging.users_raw r, jsonb_array_elements(r.response::jsonb->'results') u
            WHERE r.seed = ANY(%s) GROUP BY r.seed""", (seeds,)).fetchall()
        result = {}
        for seed, user_ids in ids:
            users = conn.execute("SELECT count(*), string_agg(content_hash, ',' ORDER BY user_id) "
                                 "FROM staging.users WHERE user_id = ANY(%s)",
                                 (user_ids,)).fetchone()
            events = conn.execute("SELECT count(*) FROM staging.user_events "
                                  "WHERE user_id = ANY(%s)", (user_ids,)).fetchone()[0]
            result[seed] = (tuple(user_ids), users[0], users[1], events)
    return result


def _backfill(ctx, api: AirflowApi, start: datetime, end: datetime, *extra: str) -> list[dict]:
    requested = time.time()
    result = airflow_cli(ctx, "backfill", "create", "--dag-id", DAG_ID,
                         "--from-date", start.isoformat(), "--to-date", end.isoformat(), *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    deadline = time.monotonic() + 300
    while True:
        runs = api.runs(DAG_ID, logical_date_gte=start.isoformat(),
                        logical_date_lte=end.isoformat())
        fresh = [r for r in runs if r["run_type"] == "backfill" and r["end_date"] and
                 datetime.fromisoformat(r["end_date"]).timestamp() >= requested]
        backfills = api.call("GET", "/backfills", params={"dag_id": DAG_ID})["backfills"]
        if (len(fresh) == 3 and all(r["state"] in {"success", "failed"} for r in fresh)
                and all(b["completed_at"] for b in backfills)):
            return fresh
        assert time.monotonic() < deadline, f"backfill did not finish: {runs}"
        time.sleep(2)


def test_backfill_three_windows_then_reprocess_changes_nothing(stack):
    api = AirflowApi(stack)
    api.wait_for_dag(DAG_ID)
    api.set_paused(DAG_ID, False)  # the scheduler queues no task of a paused DAG, backfill too
    try:
        base = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=random.randrange(500_000))
        start, end = base, base + timedelta(minutes=2)
        windows = [IngestWindow(DAG_ID, base + timedelta(minutes=i),
                                base + timedelta(minutes=i + 1)) for i in range(3)]

        backfilled_at = datetime.now(UTC)
        runs = _backfill(stack, api, start, end)
        assert sorted(r["state"] for r in runs) == ["success"] * 3
        first = _snapshot(stack, windows)
        assert len(first) == 3
        for user_ids, users, _, events in first.values():
            assert len(user_ids) == users == events == USERS_PER_WINDOW

        runs = _backfill(stack, api, start, end, "--reprocess-behavior", "completed")
        assert sorted(r["state"] for r in runs) == ["success"] * 3
        assert _snapshot(stack, windows) == first

        events = api.asset_events(DAG_ID, since=backfilled_at)
        facts = [e["extra"] for e in events
                 if e["extra"].get("seed") in {w.seed for w in windows}]
        assert len(facts) == 6
        assert {f["new_events"] for f in facts} == {USERS_PER_WINDOW, 0}
        assert all(f["fetched"] == USERS_PER_WINDOW and f["rejected"] == 0 for f in facts)
    finally:
        api.set_paused(DAG_ID, True)
