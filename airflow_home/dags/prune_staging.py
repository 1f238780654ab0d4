"""Retention: every day, published outbox events and raw API pages older than the retention
(`USERSTREAM_RETENTION_DAYS`, 7 days by default; the `retention_days` param for one run) are
deleted in batches. Pending and failed events are never deleted. The counts go into the
`userstream.pruned_staging` asset event; a task that finally fails alerts."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from include import names
from include.assets import PRUNED_STAGING
from include.dag_defaults import hop_default_args


@dag(
    dag_id=names.RETENTION_DAG_ID,
    schedule=CronTriggerTimetable("17 3 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=hop_default_args(retries=2, execution_timeout=timedelta(hours=2)),
    params={
        "retention_days": Param(None, type=["null", "integer"], minimum=1,
                                description="keep this many days; empty: the setting"),
        "database": Param("", type="string",
                          description="the database to prune; empty: the postgres_default "
                                      "connection's own"),
    },
    tags=["userstream", "maintenance"],
    doc_md=__doc__,
)
def prune_staging():
    @task(outlets=[PRUNED_STAGING])
    def prune_published(params=None, outlet_events=None):
        from include.maintenance import run_prune

        pruned = run_prune(params["retention_days"], params["database"])
        outlet_events[PRUNED_STAGING].extra = pruned.as_extra()
        return pruned.as_extra()

    prune_published()


prune_staging()
