"""Hop 2: PostgreSQL outbox -> Kafka `users_created` (Avro, Confluent wire format, schema registry).

Runs when ingest emits its asset, and every 5 minutes as a safety net so an event never waits
for a missed trigger. One run at a time; events are marked published only after the broker acked.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from include import names
from include.assets import STAGED_USER_EVENTS, USERS_TOPIC
from include.dag_defaults import RELAY_BATCH_SIZE, hop_default_args, on_asset_with_safety_net


@dag(
    dag_id=names.RELAY_DAG_ID,
    schedule=on_asset_with_safety_net(STAGED_USER_EVENTS, "*/5 * * * *"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=hop_default_args(retries=5, execution_timeout=timedelta(minutes=30)),
    tags=["userstream", "relay"],
    doc_md=__doc__,
)
def relay_user_events():
    @task(outlets=[USERS_TOPIC])
    def relay_outbox(outlet_events=None):
        from airflow.exceptions import AirflowSkipException

        from include.relay.task import run_relay

        stats = run_relay(batch_size=RELAY_BATCH_SIZE)
        if stats.sent == 0:
            raise AirflowSkipException("the outbox had no unpublished event")
        outlet_events[USERS_TOPIC].extra = stats.as_extra()
        return {"events_sent": stats.sent, "seconds": round(stats.seconds, 2)}

    relay_outbox()


relay_user_events()
