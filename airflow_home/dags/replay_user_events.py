"""Replay: re-publishes a range of outbox events, chosen by event id or by ingest window, through
the relay's normal path (triggered by hand, with params). The published events of the range are
made pending again and relayed; the stream upserts them, and a user's row keeps its newest event.
Events removed by the retention cannot be replayed; the count of events marked says how many were
found."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from include import names
from include.assets import USERS_TOPIC
from include.dag_defaults import hop_default_args


@dag(
    dag_id=names.REPLAY_DAG_ID,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=hop_default_args(retries=5, execution_timeout=timedelta(minutes=30)),
    params={
        "first_event_id": Param(None, type=["null", "integer"], minimum=1),
        "last_event_id": Param(None, type=["null", "integer"], minimum=1),
        "window_start": Param(None, type=["null", "string"], format="date-time",
                              description="events of ingest windows starting at or after this"),
        "window_end": Param(None, type=["null", "string"], format="date-time",
                            description="... and before this"),
        "topic": Param(names.USERS_TOPIC, type="string"),
        "database": Param("", type="string",
                          description="the outbox's database; empty: the postgres_default "
                                      "connection's own"),
    },
    tags=["userstream", "maintenance", "relay"],
    doc_md=__doc__,
)
def replay_user_events():
    @task
    def mark_for_replay(params=None):
        from include.maintenance import run_mark_for_replay

        return run_mark_for_replay(
            params["database"], first_event_id=params["first_event_id"],
            last_event_id=params["last_event_id"],
            window_start=params["window_start"], window_end=params["window_end"]).as_extra()

    @task(outlets=[USERS_TOPIC])
    def relay_replayed(marked: dict, params=None, outlet_events=None, **context):
        from include.relay.task import relay_task

        stats = relay_task(params, context)
        outlet_events[USERS_TOPIC].extra = {**stats.as_extra(), "replay": marked}
        return {"events_marked": marked["events_marked"], "events_sent": stats.sent}

    relay_replayed(mark_for_replay())


replay_user_events()
