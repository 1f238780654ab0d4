"""Each local-mode service round-trips real data over its real protocol."""

from __future__ import annotations

import json
import uuid

import requests
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from include import names
from include.schema_registry import SchemaRegistryClient, load_schema_text
from local_stack.airflow_api import AirflowApi
from local_stack.services import cassandra_session, kafka_client, pg_connect


def test_postgres_round_trips_a_row(stack):
    marker = str(uuid.uuid4())
    with pg_connect(stack, names.USERSTREAM_DATABASE) as conn:
        conn.execute("CREATE TEMP TABLE probe (id text PRIMARY KEY, payload jsonb)")
        conn.execute("INSERT INTO probe VALUES (%s, %s)", (marker, json.dumps({"ü": "ß"})))
        row = conn.execute("SELECT payload FROM probe WHERE id = %s", (marker,)).fetchone()
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}
    assert row[0] == {"ü": "ß"}
    assert names.STAGING_SCHEMA in schemas


def test_kafka_produces_and_consumes_a_message(stack):
    kafka = kafka_client(stack.settings)
    topic = f"probe-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(kafka)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    try:
        producer = Producer({**kafka, "acks": "all",
                             "enable.idempotence": True})
        reports = []
        producer.produce(topic, key=b"k1", value="héllo".encode(),
                         on_delivery=lambda err, msg: reports.append(err))
        assert producer.flush(30) == 0
        assert reports == [None]
        consumer = Consumer({**kafka, "group.id": topic,
                             "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        message = None
        for _ in range(30):
            message = consumer.poll(1.0)
            if message is not None and not message.error():
                break
        consumer.close()
        assert message is not None and message.error() is None
        assert (message.key(), message.value().decode()) == (b"k1", "héllo")
    finally:
        admin.delete_topics([topic])
    assert names.USERS_TOPIC in admin.list_topics(timeout=10).topics


def test_cassandra_round_trips_a_row(stack):
    cluster, session = cassandra_session(stack.settings)
    try:
        session.execute(f"CREATE TABLE IF NOT EXISTS {names.CASSANDRA_KEYSPACE}.probe "
                        "(id uuid PRIMARY KEY, name text)")
        row_id = uuid.uuid4()
        session.execute(f"INSERT INTO {names.CASSANDRA_KEYSPACE}.probe (id, name) VALUES (%s, %s)",
                        (row_id, "Çağrı"))
        row = session.execute(f"SELECT name FROM {names.CASSANDRA_KEYSPACE}.probe WHERE id = %s",
                              (row_id,)).one()
        session.execute(f"DROP TABLE {names.CASSANDRA_KEYSPACE}.probe")
    finally:
        cluster.shutdown()
    assert row.name == "Çağrı"


def test_registry_registers_and_serves_a_schema_by_id(stack):
    client = SchemaRegistryClient(stack.settings.registry_url)
    subject = f"probe-{uuid.uuid4().hex[:8]}-value"
    schema = json.dumps({"type": "record", "name": "Probe",
                         "fields": [{"name": "a", "type": "string"}]})
    schema_id = client.register(subject, schema)
    assert json.loads(client.schema_by_id(schema_id)) == json.loads(schema)
    assert client.register(subject, schema) == schema_id  # idempotent

    # Provisioning registered the pipeline's subject; read only, never written by a test.
    latest = client.latest(names.USERS_VALUE_SUBJECT)
    assert json.loads(latest["schema"]) == json.loads(load_schema_text())
    assert client.get_compatibility(names.USERS_VALUE_SUBJECT) == "BACKWARD"


def test_airflow_reports_healthy_and_no_import_errors(stack):
    health = requests.get(f"{stack.settings.airflow_url}/api/v2/monitor/health", timeout=10).json()
    for component in ("metadatabase", "scheduler", "dag_processor", "triggerer"):
        assert health[component]["status"] == "healthy", health
    errors = AirflowApi(stack).call("GET", "/importErrors")
    assert errors["total_entries"] == 0, errors
