"""Hop 2: PostgreSQL outbox -> Kafka `users_created` (Avro, Confluent wire format, schema registry).

Runs when ingest emits its asset, and every 5 minutes as a safety net so an event never waits
for a missed trigger. One run at a time; events are marked published only after the broker acked.
Events that cannot be sent are marked failed and alerted on; any task that finally fails alerts
too (connection `alerts_webhook`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from include import names
from include.assets import STAGED_USER_EVENTS, USERS_TOPIC
from include.dag_defaults import hop_default_args, on_asset_with_safety_net


@dag(
    dag_id=names.RELAY_DAG_ID,
    schedule=on_asset_with_safety_net(STAGED_USER_EVENTS, "*/5 * * * *"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=hop_default_args(retries=5, execution_timeout=timedelta(minutes=30)),
    params={
        "topic": Param(names.USERS_TOPIC, type="string",
                       description="the topic to publish to (tests use a scratch one)"),
        "database": Param("", type="string",
                          description="the database whose outbox to drain; empty: the "
                                      "postgres_default connection's own"),
    },
    tags=["userstream", "relay"],
    doc_md=__doc__,
)
def relay_user_events():
    @task(outlets=[USERS_TOPIC])
    def relay_outbox(params=None, outlet_events=None, **context):
        from include.relay.task import relay_task

        stats = relay_task(params, context)
        outlet_events[USERS_TOPIC].extra = stats.as_extra()
        return {"events_sent": stats.sent, "seconds": round(stats.seconds, 2)}

    relay_outbox()


relay_user_events()
