"""The stream hop's long-lived query: Kafka `users_created` -> Cassandra `userstream.users`.

One run of this DAG runs the query for as long as it lives: a Spark Structured Streaming query
with a processing-time trigger, checkpointed, submitted through the Spark provider. The stream DAG
starts a run when the query does not run; one run at a time, so one query. A query that fails
(its driver killed, Cassandra or the registry gone for good, a micro-batch stalled) fails the
task, which alerts, and Airflow's retry restarts it from its checkpoint with nothing lost.
`make stop-stream` stops it between two micro-batches, and the run succeeds.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from include import names
from include.alerts import WebhookAlert
from include.dag_defaults import STREAM_QUERY_RETRIES, hop_default_args
from include.stream.operator import StreamUsersOperator


@dag(
    dag_id=names.STREAM_QUERY_DAG_ID,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,  # it runs only when the stream DAG starts it
    default_args={**hop_default_args(retries=STREAM_QUERY_RETRIES, execution_timeout=None),
                  "on_retry_callback": [WebhookAlert()]},
    tags=["userstream", "stream"],
    doc_md=__doc__,
)
def run_stream_query():
    StreamUsersOperator(task_id=names.STREAM_QUERY_TASK_ID, long_lived=True)


run_stream_query()
