"""The Airflow side of the stream hop: `StreamUsersOperator` submits `spark/stream_users.py` with
the Spark provider's SparkSubmitOperator, every endpoint resolved from the connections when the
task runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from include import names
from include.connections import (
    cassandra_endpoint,
    kafka_config,
    registry_url,
    stream_job_login,
)
from include.dag_defaults import (
    STREAM_MAX_OFFSETS_PER_TRIGGER,
    STREAM_MAX_RUN_S,
    STREAM_STOP_WHEN_IDLE_S,
)
from include.stream.job import (
    CHECKPOINT_NAME,
    STREAM_JOB,
    SparkRuntime,
    StreamJobConfig,
    checkpoint_root,
    read_report,
    report_path,
    spark_conf,
)
from include.stream.query import STARTING, heartbeat_path, query_dir, write_json


def checkpoint_name(topic: str, keyspace: str) -> str:
    """The pipeline's own checkpoint, or one per other topic and keyspace: a checkpoint holds
    one topic's offsets, and a replay into another keyspace starts from the beginning."""
    if (topic, keyspace) == (names.USERS_TOPIC, names.CASSANDRA_KEYSPACE):
        return CHECKPOINT_NAME
    return f"{CHECKPOINT_NAME}-{topic}-{keyspace}"


def stream_job_config(run_id: str, try_number: int, topic: str = names.USERS_TOPIC,
                      keyspace: str = names.CASSANDRA_KEYSPACE,
                      **overrides: Any) -> StreamJobConfig:
    host, port = cassandra_endpoint(names.CASSANDRA_STREAM_CONN_ID)
    return StreamJobConfig(
        bootstrap_servers=kafka_config(names.KAFKA_STREAM_CONN_ID)["bootstrap.servers"],
        registry_url=registry_url(),
        cassandra_host=host, cassandra_port=port, topic=topic, keyspace=keyspace,
        checkpoint=checkpoint_root() / checkpoint_name(topic, keyspace),
        report=report_path(run_id, try_number), **overrides)


def pipeline_query_dir() -> Path:
    """The records (heartbeat, batch ledger, stop request) of the pipeline's long-lived query."""
    return query_dir(checkpoint_root() / CHECKPOINT_NAME)


class StreamUsersOperator(SparkSubmitOperator):
    """Runs the stream job. Per run (the default): a processing-time query that stops once no
    message came for the run's `stop_when_idle_s` param (or after `max_run_s`); with 0 it drains
    the topic and ends. `long_lived`: the pipeline's query, which runs until `make stop-stream`
    (or a failure, which Airflow's retry restarts from the checkpoint), keeping its heartbeat and
    batch ledger in `pipeline_query_dir()`. Returns the job's report (messages, rows, dead
    letters, end offsets, timings)."""

    def __init__(self, *, max_offsets_per_trigger: int = STREAM_MAX_OFFSETS_PER_TRIGGER,
                 runtime: SparkRuntime | None = None, long_lived: bool = False,
                 **kwargs: Any) -> None:
        runtime = runtime or SparkRuntime.from_env()
        super().__init__(application=str(STREAM_JOB), conn_id=names.SPARK_CONN_ID,
                         spark_binary=runtime.spark_submit, jars=runtime.jars or None,
                         conf=spark_conf(long_lived=long_lived), env_vars=runtime.env(),
                         name="userstream-stream-users", **kwargs)
        self.runtime = runtime
        self.max_offsets_per_trigger = max_offsets_per_trigger
        self.long_lived = long_lived

    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        params = context.get("params") or {}
        if self.long_lived:
            config = stream_job_config(
                ti.run_id, ti.try_number, max_offsets_per_trigger=self.max_offsets_per_trigger,
                trigger="processing-time", query_dir=pipeline_query_dir())
            write_json(heartbeat_path(config.query_dir),
                       {"state": STARTING, "written_at": time.time(), "run_id": ti.run_id,
                        "try_number": ti.try_number})
        else:
            idle_s = float(params.get("stop_when_idle_s", STREAM_STOP_WHEN_IDLE_S))
            config = stream_job_config(
                ti.run_id, ti.try_number, topic=params.get("topic", names.USERS_TOPIC),
                keyspace=params.get("keyspace", names.CASSANDRA_KEYSPACE),
                max_offsets_per_trigger=self.max_offsets_per_trigger,
                trigger="processing-time" if idle_s > 0 else "available-now",
                stop_when_idle_s=idle_s,
                max_run_s=float(params.get("max_run_s", STREAM_MAX_RUN_S)))
        self.application_args = config.arguments()
        self.env_vars = {**self.runtime.env(), **stream_job_login()}
        self.log.info("stream job: %s -> %s.users (checkpoint %s)", config.topic,
                      config.keyspace, config.checkpoint)
        super().execute(context)
        report = read_report(config.report)
        self.log.info("stream job report: %d messages, %d users upserted, %d dead letters, "
                      "%d batch(es), start-up %.1fs, total %.1fs", report["messages"],
                      report["rows_written"], report["dead_letters"], report["batches"],
                      report["startup_seconds"], report["total_seconds"])
        if not self.long_lived:  # the long-lived query's are alerted by the stream DAG's runs
            alert_new_dead_letters(report, context)
        return report


def alert_new_dead_letters(report: dict[str, Any], context: Any) -> dict[str, Any] | None:
    """An alert when the run's messages were dead-lettered (they are kept in
    `users_dead_letter` with their reason; the good messages around them landed)."""
    if not report.get("dead_letters"):
        return None
    from include.alerts import NEW_DEAD_LETTERS, send_run_alert

    return send_run_alert(
        context, NEW_DEAD_LETTERS,
        f"{report['dead_letters']} of {report['messages']} message(s) consumed in this run "
        f"could not be landed and went to users_dead_letter with their reason",
        counts={"dead_letters": report["dead_letters"], "messages": report["messages"],
                "rows_written": report["rows_written"]},
        examples=report.get("dead_letter_examples", []))
