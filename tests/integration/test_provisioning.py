"""include/provisioning.py against the real services, on scratch objects: every step applies
what is missing and nothing twice; the relay refuses a missing topic, naming it, and creates
nothing."""

from __future__ import annotations

import uuid

import pytest
from airflow.exceptions import AirflowFailException
from confluent_kafka.admin import AdminClient

from include import cql, names
from include.provisioning import (
    MIGRATIONS_DIR,
    SUBJECT_COMPATIBILITY,
    MissingTopicError,
    TopicSpec,
    apply_cql,
    ensure_topic,
    hand_over_objects,
    migrate_postgres,
    register_subject,
    topic_config,
)
from include.relay.task import run_relay
from include.schema_registry import SchemaRegistryClient
from local_stack.services import cassandra_session, kafka_client, pg_connect


def test_a_database_from_before_the_roles_is_handed_to_its_owner_with_every_object(stack):
    """The upgrade path of a state folder whose objects the superuser owns: afterwards the
    owner can migrate them, and a second pass has nothing to do."""
    database = f"handover_{uuid.uuid4().hex[:8]}"
    owner = names.POSTGRES_OWNER_ROLE
    with pg_connect(stack) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        with pg_connect(stack, database) as conn:
            migrate_postgres(conn)
            conn.execute("CREATE TYPE staging.mood AS ENUM ('ok'); "
                         "CREATE VIEW staging.recent AS SELECT id FROM staging.user_events; "
                         "CREATE FUNCTION staging.two() RETURNS int LANGUAGE sql AS 'SELECT 2'; "
                         "CREATE TABLE public.legacy (id serial PRIMARY KEY)")
            conn.execute(f'ALTER DATABASE "{database}" OWNER TO {owner}')
            moved = hand_over_objects(conn, owner)
            assert hand_over_objects(conn, owner) == 0
            foreign = conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname IN ('staging', 'public') AND pg_get_userbyid(c.relowner) <> %s",
                (owner,)).fetchall()
        assert moved >= 8 and not foreign, (moved, foreign)
        with pg_connect(stack, database, role=owner) as conn:
            conn.execute("ALTER TABLE staging.user_events ADD COLUMN probe int")
            # ALTER, not DROP: the owner of a schema may drop any object in it, but only an
            # object's owner may change it.
            conn.execute("ALTER VIEW staging.recent RENAME TO recent_ids; "
                         "ALTER FUNCTION staging.two() RENAME TO second; "
                         "ALTER TYPE staging.mood ADD VALUE 'fine'; "
                         "ALTER TABLE public.legacy ADD COLUMN probe int")
    finally:
        with pg_connect(stack) as admin:
            admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


def test_postgres_migrations_apply_once(stack):
    database = f"provision_{uuid.uuid4().hex[:8]}"
    with pg_connect(stack) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        with pg_connect(stack, database) as conn:
            first, second = migrate_postgres(conn), migrate_postgres(conn)
            tables = {row[0] for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'staging'")}
    finally:
        with pg_connect(stack) as admin:
            admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    assert first == sorted(path.stem for path in MIGRATIONS_DIR.glob("*.sql"))
    assert second == []
    assert {"users", "user_events", "users_raw", "rejected_users"} <= tables


def test_topic_keyspace_and_subject_are_created_once(stack):
    s = stack.settings
    admin_config = kafka_client(s)
    topic = TopicSpec(f"provision-{uuid.uuid4().hex[:8]}", partitions=2)
    assert ensure_topic(admin_config, topic) is True
    assert ensure_topic(admin_config, topic) is False
    metadata = AdminClient(admin_config).list_topics(topic.name, timeout=10).topics[topic.name]
    assert len(metadata.partitions) == 2
    retained = TopicSpec(topic.name, partitions=2, retention_hours=5)
    assert ensure_topic(admin_config, retained) is False  # the setting reaches an existing topic
    assert topic_config(admin_config, topic.name, "retention.ms") == str(5 * 3_600_000)

    keyspace = f"provision_{uuid.uuid4().hex[:8]}"
    cluster, session = cassandra_session(s, timeout=30)
    try:
        applied = apply_cql(session, keyspace)
        grants = sum(statement.startswith("GRANT") for statement in cql.statements(keyspace))
        assert apply_cql(session, keyspace) == applied - grants > 0  # the grants are held
        tables = {row.table_name for row in session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", [keyspace])}
        assert {"users", "users_dead_letter"} <= tables
    finally:  # a failed assertion leaves no scratch keyspace behind either
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
        cluster.shutdown()

    subject = f"provision-{uuid.uuid4().hex[:8]}-value"
    schema_id = register_subject(s.registry_url, subject)
    assert register_subject(s.registry_url, subject) == schema_id
    assert SchemaRegistryClient(s.registry_url).get_compatibility(subject) == \
        SUBJECT_COMPATIBILITY


class RecordingSession:
    """The real session, keeping the statements sent through it."""

    def __init__(self, session):
        self.session, self.sent = session, []

    def execute(self, statement, *args, **kwargs):
        self.sent.append(statement)
        return self.session.execute(statement, *args, **kwargs)


def test_a_grant_is_sent_only_to_a_role_that_lacks_it(stack):
    """The stream DAG applies the keyspace's statements every run; a repeated grant makes
    Cassandra warn in the run's log, so a held one is not sent again, and a revoked one is."""
    keyspace = f"grants_{uuid.uuid4().hex[:8]}"
    grants = [s for s in cql.statements(keyspace) if s.startswith("GRANT")]
    assert len(grants) == 3
    cluster, session = cassandra_session(stack.settings, timeout=30)
    try:
        first = RecordingSession(session)
        apply_cql(first, keyspace)
        assert [s for s in first.sent if s.startswith("GRANT")] == grants
        again = RecordingSession(session)
        apply_cql(again, keyspace)
        assert not [s for s in again.sent if s.startswith("GRANT")]
        repeated = session.execute(grants[0], timeout=30)
        warnings = repeated.response_future.warnings or []
        assert any("already granted" in w for w in warnings), warnings
        session.execute(f"REVOKE MODIFY ON TABLE {keyspace}.users FROM "
                        f"{names.CASSANDRA_STREAM_ROLE}", timeout=30)
        revoked = RecordingSession(session)
        apply_cql(revoked, keyspace)
        assert [s for s in revoked.sent if s.startswith("GRANT")] == [grants[0]]
        held = session.execute(f"LIST MODIFY ON TABLE {keyspace}.users OF "
                               f"{names.CASSANDRA_STREAM_ROLE}", timeout=30)
        assert [row.permission for row in held] == ["MODIFY"]
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
        cluster.shutdown()


def test_the_relay_fails_on_a_missing_topic_at_once_and_names_it(stack):
    missing = f"deleted-{uuid.uuid4().hex[:8]}"
    # AirflowFailException: no retry would create the topic.
    with pytest.raises(AirflowFailException, match=f"'{missing}' does not exist") as failure:
        run_relay(topic=missing)
    assert isinstance(failure.value.__cause__, MissingTopicError)
    admin = AdminClient(kafka_client(stack.settings))
    assert missing not in admin.list_topics(timeout=10).topics
