"""Hop 3: Kafka `users_created` -> Cassandra `userstream.users` (Spark Structured Streaming).

Runs when the relay emits its Kafka asset, and every 10 minutes as a safety net. A run provisions
the keyspace's tables and chooses how its messages land. The pipeline's topic is read by one
long-lived Spark query (the `run_stream_query` DAG runs it): a run starts it if it does not run,
then the landing check waits until the query's committed offsets reach the end offsets the relay
reported, balances the books of the micro-batches that read them (every message is a row, a dead
letter or superseded), and checks that the sampled users' rows are there and at least as new as
sampled. Another topic or keyspace (a replay into a new keyspace, a test's scratch topic) gets a
Spark job of the run's own, which stays up while messages keep coming and exits once idle for
`stop_when_idle_s`; the same check then judges its report. The landing check emits the Cassandra
asset with the counts it verified. New dead letters, and any task that finally fails, send an
alert to the `alerts_webhook` connection.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from include import names
from include.assets import CASSANDRA_USERS, USERS_TOPIC
from include.dag_defaults import (
    STREAM_MAX_RUN_S,
    STREAM_STOP_WHEN_IDLE_S,
    hop_default_args,
    on_asset_with_safety_net,
)
from include.stream.operator import StreamUsersOperator
from include.stream.supervision import EnsureStreamQueryOperator
from include.stream.verify import LandedUsersSensor

STREAM_TASK_ID = "run_stream_job"


@dag(
    dag_id=names.STREAM_DAG_ID,
    schedule=on_asset_with_safety_net(USERS_TOPIC, "*/10 * * * *"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=hop_default_args(retries=3, execution_timeout=timedelta(minutes=60)),
    params={
        "landing_timeout_s": Param(600, type="integer", minimum=1,
                                   description="how long the sensor waits for sampled users"),
        "verify_user_ids": Param([], type="array",
                                 description="user_ids to verify instead of the sampled ones"),
        "expected_last_offsets": Param({}, type="object",
                                       description="{partition: last offset} the run must "
                                                   "consume, instead of what the triggering "
                                                   "relay runs reported"),
        "stop_when_idle_s": Param(STREAM_STOP_WHEN_IDLE_S, type="number", minimum=0,
                                  description="another topic's Spark query ends once no "
                                              "message came for this long (0: drain what is "
                                              "there and end)"),
        "max_run_s": Param(STREAM_MAX_RUN_S, type="number", minimum=0,
                           description="the Spark query ends after this long in any case"),
        "topic": Param(names.USERS_TOPIC, type="string",
                       description="the topic to read; another one (a replay, a test's scratch "
                                   "topic) gets a checkpoint of its own"),
        "keyspace": Param(names.CASSANDRA_KEYSPACE, type="string", pattern=r"^\w+$",
                          description="the keyspace to land in (provisioned by the first task)"),
    },
    tags=["userstream", "stream"],
    doc_md=__doc__,
)
def stream_users_to_cassandra():
    @task.branch
    def prepare_landing(params=None):
        from include.provisioning import apply_cql_with_hook
        from include.stream.supervision import uses_long_lived_query

        apply_cql_with_hook(names.CASSANDRA_ADMIN_CONN_ID, keyspace=params["keyspace"])
        if uses_long_lived_query(params["topic"], params["keyspace"]):
            return "ensure_stream_query"
        return STREAM_TASK_ID

    ensure_stream_query = EnsureStreamQueryOperator(task_id="ensure_stream_query")
    run_stream_job = StreamUsersOperator(task_id=STREAM_TASK_ID)

    verify_landed = LandedUsersSensor(
        task_id="verify_landed",
        table="{{ params.keyspace }}.users",
        report_task_id=STREAM_TASK_ID,
        mode="reschedule",
        poke_interval=15,
        timeout=600,
        retries=0,
        trigger_rule="none_failed_min_one_success",
        outlets=[CASSANDRA_USERS],
    )

    prepare_landing() >> [ensure_stream_query, run_stream_job] >> verify_landed


stream_users_to_cassandra()
