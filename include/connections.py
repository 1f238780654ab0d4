"""Endpoints read from the pipeline's Airflow connections when a task runs (never at DAG parse
time): the Kafka client settings, the schema registry's URL, Cassandra's first contact point and
the stream job's login."""

from __future__ import annotations

from typing import Any

from include import names


def kafka_config(conn_id: str = names.KAFKA_CONN_ID) -> dict[str, Any]:
    """The connection's extra, which the Kafka provider passes whole to librdkafka."""
    from airflow.sdk import BaseHook

    return dict(BaseHook.get_connection(conn_id).extra_dejson)


def registry_url(conn_id: str = names.SCHEMA_REGISTRY_CONN_ID) -> str:
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    port = f":{conn.port}" if conn.port else ""
    return f"{conn.schema or 'http'}://{conn.host}{port}{conn.extra_dejson.get('path', '')}"


def cassandra_endpoint(conn_id: str = names.CASSANDRA_CONN_ID) -> tuple[str, int]:
    """The connection's contact points (comma-separated, as the hook and the Spark connector
    both take them: a job still starts while one node is down) and port."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    hosts = [h.strip() for h in (conn.host or "127.0.0.1").split(",") if h.strip()]
    return ",".join(hosts), int(conn.port or 9042)


def stream_job_login() -> dict[str, str]:
    """The stream job's logins from its connections (`cassandra_stream`, `kafka_stream`), as
    the environment variables the job reads."""
    from airflow.sdk import BaseHook

    from include.stream.job import login_environment

    cassandra = BaseHook.get_connection(names.CASSANDRA_STREAM_CONN_ID)
    return login_environment(cassandra.login or "", cassandra.password or "",
                             kafka_config(names.KAFKA_STREAM_CONN_ID))
