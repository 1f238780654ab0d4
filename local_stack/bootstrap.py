"""Local mode's part of provisioning: the PostgreSQL databases (the pipeline's, Airflow's, the
registry's), then every schema through `include.provisioning`, the module compose's init and the
DAGs use too."""

from __future__ import annotations

from include import names, provisioning
from local_stack.environment import AIRFLOW_DATABASE, REGISTRY_DATABASE
from local_stack.services import Context, cassandra_session, pg_connect
from local_stack.settings import CASSANDRA_PASSWORD_NAMES


def ensure_databases(ctx: Context) -> list[str]:
    created = []
    with pg_connect(ctx) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for database in (names.USERSTREAM_DATABASE, AIRFLOW_DATABASE, REGISTRY_DATABASE):
            if database not in existing:
                conn.execute(f'CREATE DATABASE "{database}"')
                created.append(database)
    return created


def ensure_cassandra_roles(ctx: Context) -> list[str]:
    """The generated superuser in place of Cassandra's default, and the pipeline's roles, with
    the passwords of the state folder's secrets."""
    def connect(role: str, password: str):
        return cassandra_session(ctx.settings, timeout=10, role=role, password=password)[1]

    return provisioning.ensure_cassandra_roles(
        connect, {role: ctx.secret[name] for role, name in CASSANDRA_PASSWORD_NAMES.items()})


def provision(ctx: Context) -> provisioning.Provisioned:
    cluster, session = cassandra_session(ctx.settings, timeout=10)
    try:
        with pg_connect(ctx, names.USERSTREAM_DATABASE) as conn:
            return provisioning.provision(
                conn, {"bootstrap.servers": ctx.settings.kafka_bootstrap}, session,
                ctx.settings.registry_url, provisioning.TopicSpec.from_env(environ=ctx.env))
    finally:
        cluster.shutdown()
