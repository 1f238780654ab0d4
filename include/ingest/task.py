"""The ingest task's body: builds the client and connection from Airflow connections and runs one
window. Kept out of the DAG file so the DAG stays declarative."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from include import names
from include.ingest.window import IngestResult, IngestWindow, ingest_window
from include.randomuser.client import RandomUserClient


def run_ingest_window(dag_id: str, window_start: datetime | None, window_end: datetime | None,
                      users: int, nat: str | None) -> IngestResult:
    from airflow.providers.http.hooks.http import HttpHook
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    if window_start is None or window_end is None:
        raise ValueError(
            "this run has no data interval (asset-triggered or manual without a logical date); "
            "ingest windows come from the schedule, a backfill, or a run with a logical date")
    window = IngestWindow(dag_id, window_start, window_end)
    client = RandomUserClient(HttpHook(method="GET", http_conn_id=names.RANDOMUSER_CONN_ID))
    conn = PostgresHook(postgres_conn_id=names.POSTGRES_INGEST_CONN_ID).get_conn()
    try:
        return ingest_window(window, client, conn, users_per_window=users, nat=nat or None)
    finally:
        conn.close()


def asset_extra(result: IngestResult) -> dict[str, Any]:
    extra = result.as_extra()
    extra.pop("timings_s", None)
    return extra
