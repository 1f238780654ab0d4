"""Applies the pipeline's schemas to the running services, idempotently: PostgreSQL databases and
migrations, the Kafka topic, the Cassandra keyspace and tables, and the Avro subject."""

from __future__ import annotations

from pathlib import Path

import psycopg

from include import cql, names
from include.local_mode.environment import AIRFLOW_DATABASE, REGISTRY_DATABASE
from include.local_mode.services import Context, cassandra_session, pg_connect
from include.relay import kafka
from include.schema_registry import SchemaRegistryClient, load_schema_text

INCLUDE = Path(__file__).resolve().parents[1]
MIGRATIONS_DIR = INCLUDE / "sql" / "migrations"
SUBJECT_COMPATIBILITY = "BACKWARD"


def ensure_databases(ctx: Context) -> list[str]:
    created = []
    with pg_connect(ctx) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for database in (names.USERSTREAM_DATABASE, AIRFLOW_DATABASE, REGISTRY_DATABASE):
            if database not in existing:
                conn.execute(f'CREATE DATABASE "{database}"')
                created.append(database)
    return created


def apply_migrations(ctx: Context) -> list[str]:
    with pg_connect(ctx, names.USERSTREAM_DATABASE) as conn:
        return migrate(conn)


def migrate(conn: psycopg.Connection) -> list[str]:
    """Runs each `include/sql/migrations/NNNN_*.sql` once, in order, each in its own transaction
    (an autocommit connection; local mode and docker compose's init share this)."""
    applied = []
    conn.execute("CREATE TABLE IF NOT EXISTS public.schema_migrations ("
                 " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
    done = {row[0] for row in conn.execute("SELECT version FROM public.schema_migrations")}
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.stem in done:
            continue
        with conn.transaction():
            conn.execute(path.read_text())
            conn.execute("INSERT INTO public.schema_migrations (version) VALUES (%s)",
                         (path.stem,))
        applied.append(path.stem)
    return applied


def ensure_topic(ctx: Context) -> bool:
    return kafka.ensure_topic({"bootstrap.servers": ctx.settings.kafka_bootstrap},
                              names.USERS_TOPIC, ctx.settings.topic_partitions)


def apply_cql(ctx: Context) -> int:
    cluster, session = cassandra_session(ctx.settings, timeout=10)
    try:
        return cql.apply(session)
    finally:
        cluster.shutdown()


def ensure_subject(ctx: Context) -> int:
    return register_subject(ctx.settings.registry_url)


def register_subject(registry_url: str) -> int:
    """Registers the record's schema (a no-op when that version exists) and sets BACKWARD."""
    client = SchemaRegistryClient(registry_url)
    schema_id = client.register(names.USERS_VALUE_SUBJECT, load_schema_text())
    # The registry only keeps a per-subject rule once the subject exists.
    client.set_compatibility(names.USERS_VALUE_SUBJECT, SUBJECT_COMPATIBILITY)
    return schema_id
