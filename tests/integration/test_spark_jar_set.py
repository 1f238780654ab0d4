"""The project's spark-submit and jar set read Kafka and write Cassandra through the connector."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from include import names
from include.provisioning import TopicSpec, ensure_topic
from local_stack.services import cassandra_session, kafka_client
from local_stack.stream_harness import stream_job_login

JOB = Path(__file__).parent / "spark_jobs" / "kafka_to_cassandra_smoke.py"


def test_spark_job_reads_kafka_and_writes_cassandra(stack):
    s = stack.settings
    topic = f"spark-smoke-{uuid.uuid4().hex[:8]}"
    table = "smoke"
    keyspace = f"spark_smoke_{uuid.uuid4().hex[:8]}"  # a scratch keyspace, never the pipeline's
    admin = AdminClient(kafka_client(s))
    ensure_topic(kafka_client(s), TopicSpec(topic, 2))  # with the stream job's read rights
    producer = Producer({**kafka_client(s), "acks": "all"})
    expected = {f"user-{i}": f"payload-{i}-ñ" for i in range(100)}
    for key, value in expected.items():
        producer.produce(topic, key=key.encode(), value=value.encode())
    assert producer.flush(30) == 0

    cluster, session = cassandra_session(s)
    session.execute(f"CREATE KEYSPACE {keyspace} WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute(f"CREATE TABLE {keyspace}.{table} "
                    "(id text PRIMARY KEY, body text, kafka_offset bigint)")
    session.execute(f"GRANT MODIFY ON TABLE {keyspace}.{table} TO {names.CASSANDRA_STREAM_ROLE}")
    try:
        jars = ",".join(str(p) for p in s.spark_jars)
        env = {**os.environ, "PYSPARK_PYTHON": str(s.spark_venv / "bin" / "python"),
               **stream_job_login(s)}
        result = subprocess.run(
            [str(s.spark_submit), "--master", "local[2]", "--jars", jars,
             "--conf", "spark.ui.enabled=false", str(JOB), s.kafka_bootstrap, topic, s.host,
             str(s.cassandra_port), keyspace, table],
            capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-4000:]
        assert "SMOKE_ROWS_WRITTEN=100" in result.stdout
        rows = session.execute(f"SELECT id, body FROM {keyspace}.{table}")
        assert {row.id: row.body for row in rows} == expected
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.shutdown()
        admin.delete_topics([topic])
