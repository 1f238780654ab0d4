"""Every schema the pipeline needs, applied idempotently in one place: the PostgreSQL migrations,
the Kafka topic (partitions and replication from one setting each), the Cassandra keyspace and
tables, and the Avro subject with its compatibility rule.

Local mode's `up`, docker compose's init (`python -m include.provisioning`, through the same
AIRFLOW_CONN_* connections the DAGs use) and the DAG tasks call these functions. The relay does
not create a topic it finds missing (`require_topic`): recreating a deleted topic with defaults
would hide an incident, so its task fails with a message that names the topic instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from include import cql, names
from include import sql as sql_files
from include.record_contract import load_schema, table_columns
from include.schema_registry import SchemaRegistryClient, SchemaRegistryError, load_schema_text

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "sql" / "migrations"
SUBJECT_COMPATIBILITY = "BACKWARD"
TOPIC_PARTITIONS_SETTING = "USERSTREAM_TOPIC_PARTITIONS"
TOPIC_REPLICATION_SETTING = "USERSTREAM_TOPIC_REPLICATION_FACTOR"
TOPIC_RETENTION_SETTING = "USERSTREAM_TOPIC_RETENTION_HOURS"
# With acks=all, a write needs this many in-sync copies: 2 of 3 survives the loss of a broker.
TOPIC_MIN_INSYNC_SETTING = "USERSTREAM_TOPIC_MIN_INSYNC_REPLICAS"
KEYSPACE_REPLICATION_SETTING = cql.KEYSPACE_REPLICATION_SETTING
ALERTS_WEBHOOK_SETTING = f"AIRFLOW_CONN_{names.ALERTS_WEBHOOK_CONN_ID.upper()}"


class MissingTopicError(RuntimeError):
    """The topic a hop needs does not exist; provisioning creates it, the hop never does."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 3
    replication_factor: int = 1
    retention_hours: int | None = None  # None: the broker's default (7 days)
    min_insync_replicas: int | None = None  # None: the broker's default

    def __post_init__(self) -> None:
        if (self.min_insync_replicas or 1) > self.replication_factor:
            raise ValueError(f"{TOPIC_MIN_INSYNC_SETTING} ({self.min_insync_replicas}) exceeds "
                             f"{TOPIC_REPLICATION_SETTING} ({self.replication_factor}): no "
                             f"write could ever be acknowledged")

    @classmethod
    def from_env(cls, name: str = names.USERS_TOPIC,
                 environ: Mapping[str, str] = os.environ) -> TopicSpec:
        return cls(name, _positive_int(environ, TOPIC_PARTITIONS_SETTING, 3),
                   _positive_int(environ, TOPIC_REPLICATION_SETTING, 1),
                   _positive_int(environ, TOPIC_RETENTION_SETTING, 168),
                   _positive_int(environ, TOPIC_MIN_INSYNC_SETTING, 1))

    def configs(self) -> dict[str, str]:
        configs = {}
        if self.retention_hours is not None:
            configs["retention.ms"] = str(self.retention_hours * 3_600_000)
        if self.min_insync_replicas is not None:
            configs["min.insync.replicas"] = str(self.min_insync_replicas)
        return configs


def _positive_int(environ: Mapping[str, str], setting: str, default: int) -> int:
    raw = environ.get(setting) or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{setting} must be a positive integer, got {raw!r}")
    return int(raw)


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of a password (what it stores; a client cannot log in
    with it), so that the password itself is never sent in a statement the server could log."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    encode = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{encode(salt)}${encode(stored_key)}:{encode(server_key)}"


def ensure_postgres_roles(admin_conn: Any, passwords: Mapping[str, str]) -> None:
    """As a superuser (`admin_conn`, autocommit): every login role (the owner of each database
    and the pipeline's hops and status) with its password from `passwords` (role -> password),
    none a superuser; each database created for its owner, or handed to it; no database open to
    PUBLIC, and the pipeline's roles allowed into the pipeline's."""
    from psycopg import sql

    existing = {row[0] for row in admin_conn.execute("SELECT rolname FROM pg_roles")}
    for role in names.POSTGRES_LOGIN_ROLES:
        admin_conn.execute(sql.SQL(
            "{} ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
            "NOBYPASSRLS PASSWORD {}").format(
                sql.SQL("ALTER" if role in existing else "CREATE"), sql.Identifier(role),
                sql.Literal(scram_verifier(passwords[role]))))
    owners = dict(admin_conn.execute(
        "SELECT datname, pg_get_userbyid(datdba) FROM pg_database").fetchall())
    for database, owner in names.POSTGRES_DATABASE_OWNERS.items():
        if database not in owners:
            admin_conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(owner)))
        elif owners[database] != owner:
            admin_conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(database), sql.Identifier(owner)))
        admin_conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(
            sql.Identifier(database)))
    admin_conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
        sql.Identifier(names.USERSTREAM_DATABASE),
        sql.SQL(", ").join(map(sql.Identifier, names.POSTGRES_PIPELINE_ROLES))))


def hand_over_objects(admin_conn: Any, owner: str) -> int:
    """As a superuser in a database of `owner`: its schemas, tables, sequences, views, types and
    routines that someone else owns (a stack from before the per-component roles) become
    `owner`'s, so that it can migrate them. Returns how many objects changed hands."""
    from psycopg import sql

    new_owner = {"owner": owner}
    statements = [
        sql.SQL("ALTER {} {} OWNER TO {}").format(
            sql.SQL(kind), sql.Identifier(*filter(None, (schema, name))), sql.Identifier(owner))
        for kind, schema, name in admin_conn.execute(sql_files.load("roles/foreign_objects"),
                                                     new_owner)]
    statements += [
        sql.SQL("ALTER ROUTINE {}({}) OWNER TO {}").format(
            sql.Identifier(schema, name), sql.SQL(arguments), sql.Identifier(owner))
        for schema, name, arguments in admin_conn.execute(
            sql_files.load("roles/foreign_routines"), new_owner)]
    for statement in statements:
        admin_conn.execute(statement)
    return len(statements)


def provision_postgres_roles(connect: Callable[[str], Any],
                             passwords: Mapping[str, str]) -> list[str]:
    """ensure_postgres_roles(), then hand_over_objects() in each database (each run, so a run
    cut short is completed by the next); `connect(database)` opens an autocommit connection as
    a superuser. Returns what changed."""
    with connect("postgres") as admin:
        before = {row[0] for row in admin.execute("SELECT datname FROM pg_database")}
        ensure_postgres_roles(admin, passwords)
    changes = [f"created database {database}"
               for database in names.POSTGRES_DATABASE_OWNERS if database not in before]
    for database, owner in names.POSTGRES_DATABASE_OWNERS.items():
        with connect(database) as admin:
            if moved := hand_over_objects(admin, owner):
                changes.append(f"handed {moved} object(s) of database {database} to {owner}")
    return changes


def provision_postgres_roles_with_connection(environ: Mapping[str, str] = os.environ
                                            ) -> list[str]:
    """provision_postgres_roles() as the superuser of the `postgres_admin` connection, each
    role's password from its variable (`names.postgres_password_setting`): compose's
    postgres-init, the only service that holds the superuser's password."""
    import psycopg
    from airflow.sdk import BaseHook

    admin = BaseHook.get_connection(names.POSTGRES_ADMIN_CONN_ID)
    passwords = {role: environ[names.postgres_password_setting(role)]
                 for role in names.POSTGRES_LOGIN_ROLES}

    def connect(database: str) -> Any:
        return psycopg.connect(host=admin.host, port=admin.port or 5432, user=admin.login,
                               password=admin.password, dbname=database, autocommit=True)

    return provision_postgres_roles(connect, passwords)


def grant_pipeline_roles(conn: Any) -> None:
    """The pipeline roles' rights on the staging tables (`include/sql/roles/grants.sql`)."""
    roles = {"ingest": names.POSTGRES_INGEST_ROLE, "relay": names.POSTGRES_RELAY_ROLE,
             "status": names.POSTGRES_STATUS_ROLE}
    conn.execute(Template(sql_files.load("roles/grants")).substitute(roles))


def migrate_postgres(conn: Any) -> list[str]:
    """Runs each `include/sql/migrations/NNNN_*.sql` once, in order, each in its own transaction
    (`conn`: a psycopg connection in autocommit mode). Returns the versions applied now."""
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
    grant_pipeline_roles(conn)
    return applied


def ensure_topic(admin_config: dict[str, Any], topic: TopicSpec) -> bool:
    """Creates the topic if it is missing, and sets its configs (retention) either way; True
    when it was created now."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(admin_config)
    grant_topic_acls(admin, topic.name)
    if topic.name in admin.list_topics(timeout=15).topics:
        _set_topic_configs(admin, topic)
        return False
    new = NewTopic(topic.name, topic.partitions, topic.replication_factor, config=topic.configs())
    try:
        admin.create_topics([new])[topic.name].result(30)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
        _set_topic_configs(admin, topic)
        return False
    return True


def kafka_login(principal: str, password: str) -> dict[str, str]:
    """librdkafka's settings to log in as one of the pipeline's principals: SCRAM-SHA-512, or
    PLAIN for the admin (see `names.KAFKA_ADMIN_PRINCIPAL`)."""
    mechanism = "PLAIN" if principal == names.KAFKA_ADMIN_PRINCIPAL else "SCRAM-SHA-512"
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
            "sasl.username": principal, "sasl.password": password}


def ensure_kafka_principals(admin_config: dict[str, Any], passwords: Mapping[str, str],
                            iterations: int = 8192) -> list[str]:
    """The SCRAM-SHA-512 credentials of the pipeline's principals (relay, stream, status), set to
    `passwords` (principal -> password) whether they existed or not. Returns their names."""
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    principals = [p for p in names.KAFKA_CONN_PRINCIPALS.values()
                  if p != names.KAFKA_ADMIN_PRINCIPAL]
    upserts = [UserScramCredentialUpsertion(
        principal, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, iterations),
        passwords[principal].encode()) for principal in principals]
    admin = AdminClient(admin_config)  # kept referenced until the answers came
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(30)
    return principals


def topic_acls(topic: str) -> list[Any]:
    """What each principal may do with a topic of the pipeline: the relay writes it, the stream
    job and the pipeline page read it (each with its consumer group), and nothing else."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    def allow(principal: str, operation: Any, kind: Any = ResourceType.TOPIC, name: str = topic,
              pattern: Any = ResourcePatternType.LITERAL) -> Any:
        return AclBinding(kind, name, pattern, f"User:{principal}", "*", operation,
                          AclPermissionType.ALLOW)

    relay, stream, status = (names.KAFKA_RELAY_PRINCIPAL, names.KAFKA_STREAM_PRINCIPAL,
                             names.KAFKA_STATUS_PRINCIPAL)
    return [
        allow(relay, AclOperation.WRITE), allow(relay, AclOperation.DESCRIBE),
        allow(relay, AclOperation.DESCRIBE_CONFIGS),
        allow(stream, AclOperation.READ), allow(stream, AclOperation.DESCRIBE),
        allow(stream, AclOperation.READ, ResourceType.GROUP, names.STREAM_GROUP_PREFIX,
              ResourcePatternType.PREFIXED),
        allow(status, AclOperation.READ), allow(status, AclOperation.DESCRIBE),
        allow(status, AclOperation.READ, ResourceType.GROUP, names.PIPELINE_PAGE_GROUP),
    ]


def grant_topic_acls(admin: Any, topic: str) -> None:
    """topic_acls() on the broker (creating an ACL that exists is a no-op). A broker without
    an authorizer (one the user brings) is left open, with a warning."""
    from confluent_kafka import KafkaError, KafkaException

    try:
        for future in admin.create_acls(topic_acls(topic)).values():
            future.result(30)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.SECURITY_DISABLED:
            raise
        log.warning("the broker has no authorizer: topic %s is open to every client", topic)


def _set_topic_configs(admin: Any, topic: TopicSpec) -> None:
    """Sets each of the spec's configs on an existing topic, leaving the others as they are."""
    from confluent_kafka.admin import (
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
    )

    if not topic.configs():
        return
    entries = [ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
               for key, value in topic.configs().items()]
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic.name, incremental_configs=entries)
    admin.incremental_alter_configs([resource])[resource].result(30)


def topic_config(admin_config: dict[str, Any], topic: str, key: str) -> str:
    """One config of the topic as the broker has it (`max.message.bytes`, `retention.ms`)."""
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient(admin_config)  # kept referenced until the answer came
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return admin.describe_configs([resource])[resource].result(15)[key].value


def require_topic(admin_config: dict[str, Any], topic: str) -> None:
    """Raises MissingTopicError, naming the topic, unless it exists."""
    from confluent_kafka.admin import AdminClient

    if topic not in AdminClient(admin_config).list_topics(timeout=15).topics:
        raise MissingTopicError(
            f"Kafka topic {topic!r} does not exist on {admin_config.get('bootstrap.servers')}. "
            "It is created by provisioning only (`make up`, or compose's airflow-init: "
            "`python -m include.provisioning`); if it was deleted, find out why before "
            "provisioning it again, as its events and the stream's checkpoint are gone with it.")


def topic_max_message_bytes(admin_config: dict[str, Any], topic: str) -> int:
    """The largest message the broker takes on the topic (its `max.message.bytes`)."""
    return int(topic_config(admin_config, topic, "max.message.bytes"))


def apply_cql(session: Any, keyspace: str = names.CASSANDRA_KEYSPACE,
              timeout_s: float = 60, schema: dict[str, Any] | None = None,
              environ: Mapping[str, str] = os.environ) -> int:
    """Applies every statement of `include/cql/` through a cassandra-driver session (a grant
    only where the role lacks it), then adds the `users` columns the schema (default: the .avsc)
    has and the table lacks; returns how many statements ran."""
    ran = 0
    for statement in cql.statements(keyspace, environ):
        # In order: a grant's table exists only once the statements before it ran.
        if not already_granted(session, statement, timeout_s):
            session.execute(statement, timeout=timeout_s)
            ran += 1
    added = add_missing_columns(session, keyspace, schema or load_schema(), timeout_s)
    return ran + len(added)


GRANT_STATEMENT = re.compile(r"GRANT (\w+) ON (TABLE|KEYSPACE) ([\w.]+) TO (\w+)", re.IGNORECASE)


def already_granted(session: Any, statement: str, timeout_s: float = 60) -> bool:
    """Whether `statement` grants a permission the role holds already (on the resource or on
    one that contains it). Cassandra 5 warns about a repeated grant, and the stream DAG applies
    the grants every run: three warnings in every run's log."""
    match = GRANT_STATEMENT.fullmatch(statement.strip())
    if match is None:
        return False
    permission, kind, resource, role = match.groups()
    rows = session.execute(f"LIST {permission} ON {kind} {resource} OF {role}", timeout=timeout_s)
    return any(True for _ in rows)


class ColumnTypeMismatch(RuntimeError):
    """A `users` column exists with another type than the schema's field maps to."""


def add_missing_columns(session: Any, keyspace: str, schema: dict[str, Any],
                        timeout_s: float = 60) -> list[str]:
    """`ALTER TABLE users ADD` for every field of the schema without its column (an optional
    field added to the .avsc), derived by `table_columns`; returns the statements run. A column
    whose type differs from the field's fails: Cassandra cannot change a column's type."""
    rows = session.execute(
        "SELECT column_name, type FROM system_schema.columns "
        "WHERE keyspace_name = %s AND table_name = 'users'", (keyspace,), timeout=timeout_s)
    existing = {row.column_name: row.type for row in rows}
    added = []
    for name, cql_type in table_columns(schema):
        if name not in existing:
            statement = f"ALTER TABLE {keyspace}.users ADD {name} {cql_type}"
            session.execute(statement, timeout=timeout_s)
            log.info("added column %s.users.%s (%s) for the schema's new field", keyspace,
                     name, cql_type)
            added.append(statement)
        elif existing[name] != cql_type:
            raise ColumnTypeMismatch(
                f"{keyspace}.users.{name} is {existing[name]} but the schema's field maps to "
                f"{cql_type}; a field's type cannot change (add a new optional field instead)")
    return added


# Cassandra creates this superuser on first start when an authenticator is on; provisioning
# replaces it with a generated one (`ensure_cassandra_roles`).
DEFAULT_CASSANDRA_SUPERUSER = ("cassandra", "cassandra")
LOGIN_ROLES = (names.CASSANDRA_STREAM_ROLE, names.CASSANDRA_READER_ROLE)


class CassandraRolesError(RuntimeError):
    """Cassandra refused the generated superuser and the default one."""


def refused_login(error: Exception) -> bool:
    """True when every host answered and refused the login (as opposed to being unreachable)."""
    from cassandra import AuthenticationFailed

    errors = getattr(error, "errors", None) or {}
    return bool(errors) and all(isinstance(e, AuthenticationFailed) for e in errors.values())


def ensure_cassandra_roles(connect: Callable[[str, str], Any], passwords: Mapping[str, str],
                           wait_s: float = 120,
                           environ: Mapping[str, str] = os.environ) -> list[str]:
    """Logs in as the generated superuser, replacing Cassandra's default `cassandra` one first if
    it still exists; then creates the pipeline's login roles (no superuser, no rights yet: the
    CQL's grants give those per keyspace) and sets their passwords to `passwords` (role ->
    password). `connect(role, password)` returns a cassandra-driver session. Returns what
    changed."""
    from cassandra.cluster import NoHostAvailable

    admin = names.CASSANDRA_ADMIN_ROLE
    changes = []
    try:
        session = connect(admin, passwords[admin])
    except NoHostAvailable as exc:
        if not refused_login(exc):
            raise
        session = _replace_default_superuser(connect, passwords[admin], wait_s, environ)
        changes.append(f"replaced the default superuser with {admin}")
    try:
        _replicate_roles(session, environ)
        existing = {row.role for row in session.execute("LIST ROLES")}
        for role in LOGIN_ROLES:
            verb = "ALTER ROLE" if role in existing else "CREATE ROLE"
            session.execute(f"{verb} {role} WITH LOGIN = true AND SUPERUSER = false AND "
                            f"PASSWORD = {_cql_text(passwords[role])}")
            if role not in existing:
                changes.append(f"created role {role}")
    finally:
        session.cluster.shutdown()
    return changes


def _replicate_roles(session: Any, environ: Mapping[str, str]) -> None:
    """Roles and passwords (`system_auth`) with as many copies as the pipeline's keyspace: with
    Cassandra's default of one, losing that node refuses every login."""
    session.execute(f"ALTER KEYSPACE system_auth WITH replication = {cql.replication(environ)}")


def _replace_default_superuser(connect: Callable[[str, str], Any], admin_password: str,
                               wait_s: float, environ: Mapping[str, str]) -> Any:
    """Creates the generated superuser as `cassandra`, then drops `cassandra`. Cassandra
    creates its default role a moment after it starts, so its login is retried for `wait_s`."""
    from cassandra.cluster import NoHostAvailable

    admin = names.CASSANDRA_ADMIN_ROLE
    deadline = time.monotonic() + wait_s
    while True:
        try:
            default = connect(*DEFAULT_CASSANDRA_SUPERUSER)
            break
        except NoHostAvailable as exc:
            if not refused_login(exc) or time.monotonic() > deadline:
                raise CassandraRolesError(
                    f"Cassandra refused both {admin} (with the password in the secrets) and "
                    f"the default superuser: the secrets do not belong to this Cassandra's data "
                    f"(restore them, or start from empty state): {exc}") from exc
            time.sleep(2)
    try:
        _replicate_roles(default, environ)  # before the roles exist, so each has every copy
        default.execute(f"CREATE ROLE IF NOT EXISTS {admin} WITH SUPERUSER = true AND "
                        f"LOGIN = true AND PASSWORD = {_cql_text(admin_password)}")
    finally:
        default.cluster.shutdown()
    session = connect(admin, admin_password)
    session.execute(f"DROP ROLE IF EXISTS {DEFAULT_CASSANDRA_SUPERUSER[0]}")
    log.info("Cassandra's default superuser is replaced by %s", admin)
    return session


def _cql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# The native protocol Cassandra 5 speaks: a client that does not say so offers newer ones first.
CASSANDRA_PROTOCOL_VERSION = 5


def cassandra_connector(host: str, port: int, timeout_s: float = 10) -> Callable[[str, str], Any]:
    """A `connect(role, password)` for ensure_cassandra_roles, to one contact point."""
    def connect(role: str, password: str) -> Any:
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import Cluster

        cluster = Cluster([host], port=port, connect_timeout=timeout_s,
                          protocol_version=CASSANDRA_PROTOCOL_VERSION,
                          auth_provider=PlainTextAuthProvider(role, password))
        try:
            return cluster.connect()
        except Exception:
            cluster.shutdown()
            raise

    return connect


def apply_cql_with_hook(conn_id: str = names.CASSANDRA_ADMIN_CONN_ID,
                        keyspace: str = names.CASSANDRA_KEYSPACE) -> int:
    """apply_cql() through the Cassandra provider's hook. The session is opened without a
    keyspace: the connection's keyspace may not exist yet."""
    from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook

    hook = CassandraHook(cassandra_conn_id=conn_id)
    try:
        return apply_cql(hook.get_cluster().connect(), keyspace)
    finally:
        hook.shutdown_cluster()


def register_subject(registry_url: str, subject: str = names.USERS_VALUE_SUBJECT,
                     schema_text: str | None = None) -> int:
    """Registers the record's schema (a no-op when that version exists), then sets the subject's
    compatibility rule (the registry keeps a per-subject rule only once the subject exists).
    A change that breaks the rule fails with the registry's reason."""
    client = SchemaRegistryClient(registry_url)
    try:
        schema_id = client.register(subject, schema_text or load_schema_text())
    except SchemaRegistryError as exc:
        if exc.status == 409:
            raise SchemaRegistryError(
                f"the registry refused include/schemas/user_created.avsc for subject "
                f"{subject!r}: it is not {SUBJECT_COMPATIBILITY} compatible with the registered "
                f"versions ({exc.body[:300]}). Add fields as optional with a default instead of "
                "changing or removing them.", exc.status, exc.body) from exc
        raise
    client.set_compatibility(subject, SUBJECT_COMPATIBILITY)
    return schema_id


@dataclass(frozen=True)
class Provisioned:
    migrations: list[str]
    topic_created: bool
    cql_statements: int
    schema_id: int

    def describe(self) -> str:
        return (f"postgres migrations applied now: {self.migrations or 'none'}; topic "
                f"{'created' if self.topic_created else 'present'}; {self.cql_statements} CQL "
                f"statements; Avro subject {names.USERS_VALUE_SUBJECT} schema id "
                f"{self.schema_id} ({SUBJECT_COMPATIBILITY})")


def provision(pg_conn: Any, kafka_admin_config: dict[str, Any], cassandra_session: Any,
              registry_url: str, environ: Mapping[str, str] = os.environ) -> Provisioned:
    """Applies every schema, in pipeline order, with the topic's and keyspace's settings from
    `environ`; each step is idempotent."""
    return Provisioned(
        migrations=migrate_postgres(pg_conn),
        topic_created=ensure_topic(kafka_admin_config, TopicSpec.from_env(environ=environ)),
        cql_statements=apply_cql(cassandra_session, environ=environ),
        schema_id=register_subject(registry_url))


def provision_with_connections() -> Provisioned:
    """provision() through the Airflow connections (docker compose's init)."""
    from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from include.connections import kafka_config, registry_url

    roles = ensure_cassandra_roles_with_connections()
    if roles:
        log.info("cassandra roles: %s", "; ".join(roles))
    log.info("kafka principals: %s", ", ".join(ensure_kafka_principals_with_connections()))
    conn = PostgresHook(postgres_conn_id=names.POSTGRES_CONN_ID).get_conn()
    conn.autocommit = True
    cassandra = CassandraHook(cassandra_conn_id=names.CASSANDRA_ADMIN_CONN_ID)
    try:
        return provision(conn, kafka_config(names.KAFKA_ADMIN_CONN_ID),
                         cassandra.get_cluster().connect(),
                         registry_url())
    finally:
        conn.close()
        cassandra.shutdown_cluster()


def ensure_cassandra_roles_with_connections() -> list[str]:
    """ensure_cassandra_roles() with each role's login and password from its connection (the
    admin's, the stream job's and the provider's default, the reader)."""
    from airflow.sdk import BaseHook

    passwords = {}
    for conn_id, role in names.CASSANDRA_CONN_ROLES.items():
        conn = BaseHook.get_connection(conn_id)
        if conn.login != role or not conn.password:
            raise ValueError(f"connection {conn_id} must log in as {role} with a password "
                             f"(it has login {conn.login!r})")
        passwords[role] = conn.password
    admin = BaseHook.get_connection(names.CASSANDRA_ADMIN_CONN_ID)
    return ensure_cassandra_roles(
        cassandra_connector((admin.host or "").split(",")[0], int(admin.port or 9042)),
        passwords)


def ensure_kafka_principals_with_connections() -> list[str]:
    """ensure_kafka_principals() through the admin's connection, each principal's password from
    its own connection (docker compose's init; local mode's `up` uses the state folder)."""
    from include.connections import kafka_config

    passwords = {}
    for conn_id, principal in names.KAFKA_CONN_PRINCIPALS.items():
        config = kafka_config(conn_id)
        if config.get("sasl.username") != principal or not config.get("sasl.password"):
            raise ValueError(f"connection {conn_id} must log in as {principal} with a password "
                             f"(it has sasl.username {config.get('sasl.username')!r})")
        passwords[principal] = config["sasl.password"]
    return ensure_kafka_principals(kafka_config(names.KAFKA_ADMIN_CONN_ID), passwords)


def main(argv: list[str] | None = None) -> int:
    """`python -m include.provisioning`: every schema; `... postgres-roles`: the PostgreSQL
    roles and databases only (compose's postgres-init, before the registry and Airflow)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if (argv if argv is not None else sys.argv[1:]) == ["postgres-roles"]:
        for change in provision_postgres_roles_with_connection() or ["nothing to change"]:
            log.info("postgres: %s", change)
        return 0
    log.info("userstream provisioned: %s", provision_with_connections().describe())
    if not os.environ.get(ALERTS_WEBHOOK_SETTING):
        log.warning("%s is not set: alerts go nowhere but the task logs. Set it to a webhook "
                    "(see .env.example)", ALERTS_WEBHOOK_SETTING)
    return 0


if __name__ == "__main__":
    sys.exit(main())
