"""Hop 1: randomuser API -> PostgreSQL staging + transactional outbox, one window per run."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from include import names
from include.assets import STAGED_USER_EVENTS
from include.dag_defaults import USERS_PER_WINDOW, hop_default_args

DAG_ID = names.INGEST_DAG_ID


@dag(
    dag_id=DAG_ID,
    schedule=CronDataIntervalTimetable("* * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # Two windows at a time fill the 2-core box; the executor's other slots stay free for
    # the relay and the stream job, so they overlap a backfill instead of queuing behind it.
    max_active_runs=2,
    default_args=hop_default_args(retries=3, execution_timeout=timedelta(minutes=15)),
    params={
        "users": Param(USERS_PER_WINDOW, type="integer", minimum=1, maximum=1_000_000),
        "nat": Param("", type="string", description="comma list of nationalities; empty = all"),
    },
    tags=["userstream", "ingest"],
    doc_md=__doc__,
)
def ingest_users():
    @task(outlets=[STAGED_USER_EVENTS])
    def ingest_window(params=None, data_interval_start=None, data_interval_end=None,
                      outlet_events=None):
        from include.ingest.task import asset_extra, run_ingest_window

        result = run_ingest_window(DAG_ID, data_interval_start, data_interval_end,
                                   params["users"], params["nat"])
        outlet_events[STAGED_USER_EVENTS].extra = asset_extra(result)
        return result.timings_s

    ingest_window()


ingest_users()
