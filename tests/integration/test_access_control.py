"""Every service refuses a client without credentials, and each of the pipeline's roles can do
what its component needs and nothing more (issue: security). Run against the live stack, on
scratch keyspaces."""

from __future__ import annotations

import uuid

import pytest
from cassandra import Unauthorized
from cassandra.cluster import Cluster, NoHostAvailable

from include import names, provisioning
from local_stack.services import cassandra_session
from tests.integration.kafka_support import (
    create_topic,
    kafka_refuses,
    list_topics,
    produce_probe,
    read_probe,
)

USER_ROW = ("INSERT INTO {ks}.users (user_id, event_id, first_name) "
            "VALUES (6f1c5f9e-4d6b-4a8e-9a59-2b0c7e1d3a01, 1, 'probe')")
DEAD_LETTER_ROW = ("INSERT INTO {ks}.users_dead_letter (topic, kafka_partition, kafka_offset, "
                   "error) VALUES ('t', 0, 1, 'probe')")


@pytest.fixture(scope="module")
def role_sessions(stack):
    sessions = {}
    for role in (names.CASSANDRA_STREAM_ROLE, names.CASSANDRA_READER_ROLE):
        sessions[role] = cassandra_session(stack.settings, timeout=30, role=role)[1]
    yield sessions
    for session in sessions.values():
        session.cluster.shutdown()


def _refused_login(settings, **login) -> Exception:
    cluster = Cluster([settings.host], port=settings.cassandra_port, protocol_version=5,
                      connect_timeout=10, **login)
    try:
        with pytest.raises(NoHostAvailable) as refused:
            cluster.connect()
    finally:
        cluster.shutdown()
    return refused.value


def test_cassandra_refuses_anonymous_clients_and_its_default_superuser(stack):
    from cassandra.auth import PlainTextAuthProvider

    anonymous = _refused_login(stack.settings)
    assert "requires authentication" in str(anonymous), anonymous
    default = _refused_login(stack.settings, auth_provider=PlainTextAuthProvider(
        *provisioning.DEFAULT_CASSANDRA_SUPERUSER))
    assert provisioning.refused_login(default), default


def test_cassandra_refuses_a_pipeline_role_with_a_wrong_password(stack):
    from cassandra.auth import PlainTextAuthProvider

    for role in (names.CASSANDRA_STREAM_ROLE, names.CASSANDRA_READER_ROLE,
                 names.CASSANDRA_ADMIN_ROLE):
        refused = _refused_login(stack.settings,
                                 auth_provider=PlainTextAuthProvider(role, "not-the-password"))
        assert provisioning.refused_login(refused), refused


def test_no_role_of_the_pipeline_but_the_admin_is_a_superuser(stack):
    cluster, session = cassandra_session(stack.settings, timeout=30)
    try:
        roles = {row.role: row.super for row in session.execute("LIST ROLES")}
    finally:
        cluster.shutdown()
    assert roles[names.CASSANDRA_ADMIN_ROLE] is True
    assert roles[names.CASSANDRA_STREAM_ROLE] is False
    assert roles[names.CASSANDRA_READER_ROLE] is False
    assert provisioning.DEFAULT_CASSANDRA_SUPERUSER[0] not in roles


def test_the_stream_role_writes_the_two_tables_and_nothing_else(cassandra, role_sessions):
    keyspace, admin = cassandra
    stream = role_sessions[names.CASSANDRA_STREAM_ROLE]
    stream.execute(USER_ROW.format(ks=keyspace))
    stream.execute(DEAD_LETTER_ROW.format(ks=keyspace))
    assert admin.execute(f"SELECT first_name FROM {keyspace}.users").one().first_name == "probe"
    # MODIFY is Cassandra's one write permission: it includes DELETE and TRUNCATE.
    for statement in (f"SELECT * FROM {keyspace}.users",
                      f"DROP TABLE {keyspace}.users_dead_letter",
                      f"ALTER TABLE {keyspace}.users ADD extra text",
                      f"CREATE TABLE {keyspace}.other (id int PRIMARY KEY)",
                      "CREATE KEYSPACE stream_role_probe WITH replication = "
                      "{'class': 'SimpleStrategy', 'replication_factor': 1}",
                      f"CREATE ROLE probe_{uuid.uuid4().hex[:6]}"):
        with pytest.raises(Unauthorized):
            stream.execute(statement)
            pytest.fail(f"the stream role may: {statement}")


def test_the_reader_role_reads_and_cannot_write(cassandra, role_sessions):
    keyspace, _ = cassandra
    reader = role_sessions[names.CASSANDRA_READER_ROLE]
    assert reader.execute(f"SELECT count(*) FROM {keyspace}.users_dead_letter").one() is not None
    for statement in (USER_ROW.format(ks=keyspace), DEAD_LETTER_ROW.format(ks=keyspace),
                      f"TRUNCATE {keyspace}.users", f"DROP KEYSPACE {keyspace}"):
        with pytest.raises(Unauthorized):
            reader.execute(statement)


def test_a_keyspace_without_the_pipelines_grants_is_closed_to_its_roles(stack, role_sessions):
    keyspace = f"ungranted_{uuid.uuid4().hex[:8]}"
    cluster, admin = cassandra_session(stack.settings, timeout=30)
    try:
        admin.execute(f"CREATE KEYSPACE {keyspace} WITH replication = "
                      "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        admin.execute(f"CREATE TABLE {keyspace}.users (user_id uuid PRIMARY KEY, "
                      "event_id bigint, first_name text)")
        with pytest.raises(Unauthorized):
            role_sessions[names.CASSANDRA_STREAM_ROLE].execute(USER_ROW.format(ks=keyspace))
        with pytest.raises(Unauthorized):
            role_sessions[names.CASSANDRA_READER_ROLE].execute(f"SELECT * FROM {keyspace}.users")
    finally:
        admin.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.shutdown()


# --- PostgreSQL ---------------------------------------------------------------------------

# What each role may do to the staging tables; every other table privilege is refused.
ALLOWED = {
    names.POSTGRES_INGEST_ROLE: {(table, right) for table in
                                 ("users", "users_raw", "rejected_users", "user_events")
                                 for right in ("SELECT", "INSERT", "UPDATE")},
    names.POSTGRES_RELAY_ROLE: {("user_events", "SELECT"), ("user_events", "UPDATE")},
    names.POSTGRES_STATUS_ROLE: {(table, "SELECT") for table in
                                 ("users", "users_raw", "rejected_users", "user_events")},
}
KEYS = {"users": "user_id", "users_raw": "id", "rejected_users": "id", "user_events": "id"}
STATEMENTS = {
    "SELECT": "SELECT 1 FROM staging.{table} LIMIT 0",
    "INSERT": "INSERT INTO staging.{table} SELECT * FROM staging.{table} WHERE false",
    "UPDATE": "UPDATE staging.{table} SET {key} = {key} WHERE false",
    "DELETE": "DELETE FROM staging.{table} WHERE false",
    "TRUNCATE": "TRUNCATE staging.{table}",
}


def test_postgres_login_roles_use_scram_and_only_the_bootstrap_role_is_a_superuser(stack):
    from local_stack.environment import POSTGRES_USER
    from local_stack.services import pg_connect

    with pg_connect(stack) as admin:
        roles = admin.execute("SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, "
                              "rolpassword FROM pg_authid WHERE rolcanlogin").fetchall()
    by_name = {name: (superuser, createrole, createdb, password)
               for name, superuser, createrole, createdb, password in roles}
    expected = set(names.POSTGRES_LOGIN_ROLES)
    assert expected <= set(by_name)
    for name, (superuser, createrole, createdb, password) in by_name.items():
        assert password.startswith("SCRAM-SHA-256$"), name
        if name != POSTGRES_USER:
            assert not (superuser or createrole or createdb), name


def test_postgres_refuses_a_login_without_or_with_a_wrong_password(stack):
    import psycopg

    settings = stack.settings
    for role in names.POSTGRES_LOGIN_ROLES:
        for password in ("", "not-the-password"):
            with pytest.raises(psycopg.OperationalError,
                               match=r"password authentication failed|no password supplied"):
                psycopg.connect(host=settings.host, port=settings.postgres_port, user=role,
                                password=password, dbname=names.USERSTREAM_DATABASE,
                                connect_timeout=10).close()


def test_each_database_admits_only_its_own_roles(stack):
    import psycopg

    from local_stack.services import pg_connect

    admitted = {names.AIRFLOW_DATABASE: {names.POSTGRES_AIRFLOW_ROLE},
                names.REGISTRY_DATABASE: {names.POSTGRES_REGISTRY_ROLE},
                names.USERSTREAM_DATABASE: {names.POSTGRES_OWNER_ROLE,
                                            *names.POSTGRES_PIPELINE_ROLES}}
    roles = set().union(*admitted.values())
    for database, allowed in admitted.items():
        for role in roles:
            if role in allowed:
                pg_connect(stack, database, role=role).close()
                continue
            with pytest.raises(psycopg.OperationalError, match="permission denied"):
                pg_connect(stack, database, role=role).close()


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_each_pipeline_role_has_only_its_rights_on_the_staging_tables(stack, scratch_db, role):
    import psycopg

    from local_stack.services import pg_connect

    with pg_connect(stack, scratch_db, role=role) as conn:
        for table in ("users", "users_raw", "rejected_users", "user_events"):
            for right, statement in STATEMENTS.items():
                sql = statement.format(table=table, key=KEYS[table])
                if (table, right) in ALLOWED[role]:
                    conn.execute(sql)
                    continue
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(sql)
                    pytest.fail(f"{role} may {right} staging.{table}")
        for statement in ("CREATE TABLE staging.probe (id int)", "DROP TABLE staging.users",
                          "ALTER TABLE staging.user_events ADD COLUMN probe int",
                          "CREATE SCHEMA probe"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
                pytest.fail(f"{role} may: {statement}")


# --- Kafka --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scratch_topic(stack):
    from confluent_kafka.admin import AdminClient

    from include.provisioning import TopicSpec, ensure_topic
    from local_stack.services import kafka_client

    topic = f"acl-probe-{uuid.uuid4().hex[:8]}"
    ensure_topic(kafka_client(stack.settings), TopicSpec(topic, 1))  # with the pipeline's ACLs
    yield topic
    AdminClient(kafka_client(stack.settings)).delete_topics([topic])


def testkafka_refuses_anonymous_clients_and_unknown_logins(stack, scratch_topic):
    from include.provisioning import kafka_login
    from local_stack.services import kafka_client

    anonymous = {"bootstrap.servers": stack.settings.kafka_bootstrap}
    kafka_refuses(anonymous, list_topics)
    for principal in (names.KAFKA_RELAY_PRINCIPAL, "nobody"):
        wrong = {**anonymous, **kafka_login(principal, "not-the-password")}
        kafka_refuses(wrong, list_topics)
    # PLAIN knows the admin only: a pipeline principal cannot use it with its own password.
    stream = kafka_client(stack.settings, names.KAFKA_STREAM_PRINCIPAL)
    kafka_refuses({**stream, "sasl.mechanism": "PLAIN"}, list_topics)


def test_each_kafka_principal_may_do_its_job_and_nothing_more(stack, scratch_topic):
    from local_stack.services import kafka_client

    relay, stream, status = (kafka_client(stack.settings, principal) for principal in (
        names.KAFKA_RELAY_PRINCIPAL, names.KAFKA_STREAM_PRINCIPAL, names.KAFKA_STATUS_PRINCIPAL))
    produce_probe(relay, scratch_topic)
    assert read_probe(stream, scratch_topic, f"{names.STREAM_GROUP_PREFIX}-probe") == b"probe"
    assert read_probe(status, scratch_topic, names.PIPELINE_PAGE_GROUP) == b"probe"
    for config in (stream, status):
        kafka_refuses(config, lambda c: produce_probe(c, scratch_topic))
    kafka_refuses(relay, lambda c: read_probe(c, scratch_topic, f"{names.STREAM_GROUP_PREFIX}-x"))
    kafka_refuses(stream, lambda c: read_probe(c, scratch_topic, "another-group"))
    for config in (relay, stream, status):
        kafka_refuses(config, lambda c: create_topic(c, f"acl-new-{uuid.uuid4().hex[:6]}"))
        assert scratch_topic in list_topics(config)
        # Topics without the pipeline's grants stay invisible.
        assert "__consumer_offsets" not in list_topics(config)
