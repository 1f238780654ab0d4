"""Local mode's part of provisioning, with the state folder's secrets: the PostgreSQL roles and
databases (the pipeline's, Airflow's, the registry's) and Cassandra's roles, then every schema,
all through `include.provisioning`, the module compose's init and the DAGs use too."""

from __future__ import annotations

from include import names, provisioning
from local_stack.services import Context, cassandra_session, kafka_client, pg_connect
from local_stack.settings import (
    CASSANDRA_PASSWORD_NAMES,
    KAFKA_PASSWORD_NAMES,
    POSTGRES_PASSWORD_NAMES,
)


def ensure_databases(ctx: Context) -> list[str]:
    """The PostgreSQL login roles and their databases, as the superuser; a database that had
    another owner (a state folder from before the roles) is handed over with its objects."""
    return provisioning.provision_postgres_roles(
        lambda database: pg_connect(ctx, database),
        {role: ctx.secret[name] for role, name in POSTGRES_PASSWORD_NAMES.items()})


def ensure_cassandra_roles(ctx: Context) -> list[str]:
    """The generated superuser in place of Cassandra's default, and the pipeline's roles, with
    the passwords of the state folder's secrets."""
    def connect(role: str, password: str):
        return cassandra_session(ctx.settings, timeout=10, role=role, password=password)[1]

    return provisioning.ensure_cassandra_roles(
        connect, {role: ctx.secret[name] for role, name in CASSANDRA_PASSWORD_NAMES.items()},
        environ=ctx.env)


def ensure_kafka_principals(ctx: Context) -> list[str]:
    """The SCRAM credentials of the pipeline's Kafka principals, as the admin."""
    return provisioning.ensure_kafka_principals(
        kafka_client(ctx.settings),
        {principal: ctx.secret[name] for principal, name in KAFKA_PASSWORD_NAMES.items()})


def provision(ctx: Context) -> provisioning.Provisioned:
    cluster, session = cassandra_session(ctx.settings, timeout=10)
    try:
        with pg_connect(ctx, names.USERSTREAM_DATABASE, role=names.POSTGRES_OWNER_ROLE) as conn:
            return provisioning.provision(
                conn, kafka_client(ctx.settings), session,
                ctx.settings.registry_url, environ=ctx.env)
    finally:
        cluster.shutdown()
