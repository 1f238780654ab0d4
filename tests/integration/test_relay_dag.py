"""relay_user_events through the real scheduler: the provider's producer hook, the registry
connection, ack-gated publishing and the Kafka asset's facts. The events are the pipeline's own:
an ingest run of a past window from the configured source puts them in the outbox."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from include import names
from local_stack.airflow_api import AirflowApi
from local_stack.services import pg_connect

DAG_ID = names.RELAY_DAG_ID


def ingest_window_events(stack, api: AirflowApi, users: int) -> list[int]:
    """Runs ingest_users for one past window of `users` users; returns its outbox event ids."""
    api.wait_for_dag(names.INGEST_DAG_ID)
    # After the DAG's start_date (2026-01-01): earlier logical dates get no task instances.
    logical_date = datetime(2026, 1, 2, tzinfo=UTC) + timedelta(minutes=random.randrange(300_000))
    with pg_connect(stack, "userstream") as conn:
        last_id = conn.execute("SELECT coalesce(max(id), 0) FROM staging.user_events").fetchone()[0]
    api.set_paused(names.INGEST_DAG_ID, False)
    try:
        run = api.trigger(names.INGEST_DAG_ID, logical_date=logical_date, conf={"users": users})
        (finished,) = api.wait_for_runs(names.INGEST_DAG_ID, {run["dag_run_id"]})
        assert finished["state"] == "success", finished
    finally:
        api.set_paused(names.INGEST_DAG_ID, True)
    with pg_connect(stack, "userstream") as conn:
        # The pipeline's DAGs stay paused between tests: every newer event is this run's.
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM staging.user_events WHERE id > %s", (last_id,))]
    assert len(ids) >= users, f"the ingest run staged {len(ids)} new events, not {users}"
    return ids


def test_triggered_relay_publishes_the_outbox_and_reports_facts(stack):
    api = AirflowApi(stack)
    api.wait_for_dag(DAG_ID)
    ids = ingest_window_events(stack, api, 300)
    triggered_at = datetime.now(UTC)
    api.set_paused(DAG_ID, False)
    try:
        run = api.trigger(DAG_ID)
        (finished,) = api.wait_for_runs(DAG_ID, {run["dag_run_id"]})
        assert finished["state"] == "success", finished
    finally:
        api.set_paused(DAG_ID, True)
    with pg_connect(stack, "userstream") as conn:
        pending = conn.execute("SELECT count(*) FROM staging.user_events WHERE id = ANY(%s) "
                               "AND published_at IS NULL", (ids,)).fetchone()[0]
    assert pending == 0
    # Unpausing may let the 5-minute safety-net run publish them first: either run counts.
    deadline = time.monotonic() + 30
    while True:
        events = api.asset_events(DAG_ID, since=triggered_at)
        covering = [e["extra"] for e in events
                    if e["extra"]["outbox_id_range"][0] <= min(ids)
                    and e["extra"]["outbox_id_range"][1] >= max(ids)]
        if covering or time.monotonic() > deadline:
            break
        time.sleep(1)
    (extra,) = covering
    assert extra["events_sent"] >= len(ids)
    assert extra["partition_last_offsets"] and len(extra["sample_user_ids"]) == 20
