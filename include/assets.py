"""The pipeline's Airflow Assets, each declared once and imported by its producer and consumers.

URIs name where the data lives. Hosts and ports come from the same USERSTREAM_* settings local
mode and compose use (read from the environment, never from a connection, so parsing a DAG file
makes no connection look-up)."""

from __future__ import annotations

import os

from airflow.sdk import Asset

from include import names


def _endpoint(service: str, default_port: int) -> str:
    host = os.environ.get(f"USERSTREAM_{service}_HOST") or os.environ.get(
        "USERSTREAM_HOST", "127.0.0.1")
    port = os.environ.get(f"USERSTREAM_{service}_PORT") or str(default_port)
    return f"{host}:{port}"


STAGED_USER_EVENTS = Asset(
    name="userstream.staged_user_events",
    uri=(f"postgres://{_endpoint('POSTGRES', 5433)}/{names.USERSTREAM_DATABASE}/"
         f"{names.STAGING_SCHEMA}/user_events"),
    group="userstream",
)


USERS_TOPIC = Asset(
    name="userstream.users_created_topic",
    uri=f"kafka://{_endpoint('KAFKA', 9092)}/{names.USERS_TOPIC}",
    group="userstream",
)


CASSANDRA_USERS = Asset(
    name="userstream.cassandra_users",
    uri=f"cassandra://{_endpoint('CASSANDRA', 9042)}/{names.CASSANDRA_KEYSPACE}/users",
    group="userstream",
)


# What the retention deleted (counts, cutoff): staging rows leave, nothing downstream changes.
PRUNED_STAGING = Asset(
    name="userstream.pruned_staging",
    uri=(f"postgres://{_endpoint('POSTGRES', 5433)}/{names.USERSTREAM_DATABASE}/"
         f"{names.STAGING_SCHEMA}/pruned"),
    group="userstream",
)
