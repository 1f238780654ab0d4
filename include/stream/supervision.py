"""How Airflow keeps the pipeline's long-lived stream query running: the supervisor DAG
(`names.STREAM_QUERY_DAG_ID`) runs it as one long task, and each stream DAG run makes sure it
runs before it waits for its data (`EnsureStreamQueryOperator`)."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

from include import names


def uses_long_lived_query(topic: str, keyspace: str) -> bool:
    """The pipeline's topic and keyspace are served by the long-lived query; another topic or
    keyspace (a test's scratch ones, a replay into a new keyspace) by a Spark job of its own."""
    return (topic, keyspace) == (names.USERS_TOPIC, names.CASSANDRA_KEYSPACE)


class EnsureStreamQueryOperator(TriggerDagRunOperator):
    """Starts the long-lived query when it does not run: does nothing when its heartbeat is
    fresh (or it is starting), or when the supervisor DAG has a run that will start it (queued,
    or running and waiting for its retry); otherwise triggers a supervisor run. The supervisor
    DAG's one active run at a time makes it one query, however many stream DAG runs ask."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(trigger_dag_id=names.STREAM_QUERY_DAG_ID, wait_for_completion=False,
                         **kwargs)

    def execute(self, context: Any) -> Any:
        from include.stream.operator import pipeline_query_dir
        from include.stream.query import query_health, read_heartbeat, stopped_on_request

        heartbeat = read_heartbeat(pipeline_query_dir())
        healthy, detail = query_health(heartbeat)
        if healthy:
            self.log.info("%s", detail)
            return None
        ti = context["ti"]
        queued = ti.get_dr_count(dag_id=names.STREAM_QUERY_DAG_ID, states=["queued"])
        running = ti.get_dr_count(dag_id=names.STREAM_QUERY_DAG_ID, states=["running"])
        # A running supervisor run starts the query, or waits to retry it; one whose query was
        # stopped on request is ending, and a new run queues behind it.
        if queued or (running and not stopped_on_request(heartbeat)):
            self.log.info("%s; %s has %d run(s) queued and %d running, which start it", detail,
                          names.STREAM_QUERY_DAG_ID, queued, running)
            return None
        self.log.warning("%s: starting it with a run of %s", detail, names.STREAM_QUERY_DAG_ID)
        return super().execute(context)
