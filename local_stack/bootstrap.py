"""Local mode's part of provisioning: the PostgreSQL databases (the pipeline's, Airflow's, the
registry's), then every schema through `include.provisioning`, the module compose's init and the
DAGs use too."""

from __future__ import annotations

from include import names, provisioning
from local_stack.environment import AIRFLOW_DATABASE, REGISTRY_DATABASE
from local_stack.services import Context, cassandra_session, pg_connect


def ensure_databases(ctx: Context) -> list[str]:
    created = []
    with pg_connect(ctx) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for database in (names.USERSTREAM_DATABASE, AIRFLOW_DATABASE, REGISTRY_DATABASE):
            if database not in existing:
                conn.execute(f'CREATE DATABASE "{database}"')
                created.append(database)
    return created


def provision(ctx: Context) -> provisioning.Provisioned:
    cluster, session = cassandra_session(ctx.settings, timeout=10)
    try:
        with pg_connect(ctx, names.USERSTREAM_DATABASE) as conn:
            return provisioning.provision(
                conn, {"bootstrap.servers": ctx.settings.kafka_bootstrap}, session,
                ctx.settings.registry_url, provisioning.TopicSpec.from_env(environ=ctx.env))
    finally:
        cluster.shutdown()
