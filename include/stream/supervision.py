"""How Airflow keeps the pipeline's long-lived stream query running: the supervisor DAG
(`names.STREAM_QUERY_DAG_ID`) runs it as one long task, and each stream DAG run makes sure it
runs before it waits for its data (`EnsureStreamQueryOperator`)."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

from include import names

ACTIVE_RUN_STATES = ["queued", "running"]


def uses_long_lived_query(topic: str, keyspace: str) -> bool:
    """The pipeline's topic and keyspace are served by the long-lived query; another topic or
    keyspace (a test's scratch ones, a replay into a new keyspace) by a Spark job of its own."""
    return (topic, keyspace) == (names.USERS_TOPIC, names.CASSANDRA_KEYSPACE)


class EnsureStreamQueryOperator(TriggerDagRunOperator):
    """Starts the long-lived query when it does not run: does nothing when its heartbeat is
    fresh, or when the supervisor DAG has a run queued or running (the query is starting, or
    waits for its retry); otherwise triggers a supervisor run. The supervisor DAG's one active
    run at a time makes it one query, however many stream DAG runs ask."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(trigger_dag_id=names.STREAM_QUERY_DAG_ID, wait_for_completion=False,
                         **kwargs)

    def execute(self, context: Any) -> Any:
        from include.stream.operator import pipeline_query_dir
        from include.stream.query import query_health, read_heartbeat

        healthy, detail = query_health(read_heartbeat(pipeline_query_dir()))
        if healthy:
            self.log.info("%s", detail)
            return None
        active = context["ti"].get_dr_count(dag_id=names.STREAM_QUERY_DAG_ID,
                                            states=ACTIVE_RUN_STATES)
        if active:
            self.log.info("%s; %s has %d run(s) queued or running, which start it", detail,
                          names.STREAM_QUERY_DAG_ID, active)
            return None
        self.log.warning("%s: starting it with a run of %s", detail, names.STREAM_QUERY_DAG_ID)
        return super().execute(context)
