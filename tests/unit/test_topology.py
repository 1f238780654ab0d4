"""The topology is settings only: which processes run, their addresses, and the connections and
replication the hops are given. No DAG, `include/` module or the Spark job branches on it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from include import names
from local_stack.environment import service_environment
from local_stack.settings import PROJECT_ROOT, Settings
from local_stack.topology import active_services

HOP_CODE = ("include", "airflow_home/dags", "spark", "plugins")
CLUSTER_NODES = {"kafka-1", "kafka-2", "kafka-3", "cassandra-1", "cassandra-2", "cassandra-3",
                 "spark-master", "spark-worker-1", "spark-worker-2", "airflow-worker-1",
                 "airflow-worker-2", "redis"}
SECRETS = {name: "x" for name in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_FERNET_KEY",
                                  "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY")}


def _settings(topology: str) -> Settings:
    return replace(Settings(state_dir=Path("/state")), topology=topology, source="local")


def _hop_files() -> dict[str, str]:
    return {str(path.relative_to(PROJECT_ROOT)): hashlib.sha256(path.read_bytes()).hexdigest()
            for folder in HOP_CODE for path in sorted((PROJECT_ROOT / folder).rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts}


def test_the_cluster_runs_every_node_under_its_name_on_its_own_address():
    names = [s.name for s in active_services(_settings("cluster"))]
    assert set(names) >= CLUSTER_NODES
    assert not {"kafka", "cassandra"} & set(names)
    cluster = _settings("cluster")
    addresses = {s.name: s.address(cluster) for s in active_services(cluster)}
    assert [addresses[f"kafka-{i}"] for i in (1, 2, 3)] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert [addresses[f"cassandra-{i}"] for i in (1, 2, 3)] == \
        ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert addresses["spark-worker-1"] != addresses["spark-worker-2"]
    # Cassandra's nodes join one at a time; the Airflow services start last.
    assert all(s.serial for s in active_services(cluster) if s.name.startswith("cassandra-"))
    assert names[-1].startswith("airflow-")
    single = [s.name for s in active_services(_settings("single"))]
    assert not CLUSTER_NODES & set(single) and {"kafka", "cassandra"} <= set(single)


def test_the_topology_changes_only_connections_and_settings():
    single = service_environment(_settings("single"), SECRETS)
    cluster = service_environment(_settings("cluster"), SECRETS)
    changed = {key for key in single.keys() | cluster.keys() if single.get(key) != cluster.get(key)}
    celery = {key for key in cluster if key.startswith("AIRFLOW__CELERY__")}
    assert changed - celery == {
        "AIRFLOW__CORE__EXECUTOR", "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT",
        "AIRFLOW_CONN_KAFKA_DEFAULT", "AIRFLOW_CONN_KAFKA_ADMIN", "AIRFLOW_CONN_KAFKA_STREAM",
        "AIRFLOW_CONN_KAFKA_STATUS", "AIRFLOW_CONN_CASSANDRA_DEFAULT",
        "AIRFLOW_CONN_CASSANDRA_STREAM", "AIRFLOW_CONN_CASSANDRA_ADMIN",
        "AIRFLOW_CONN_SPARK_DEFAULT",
        "USERSTREAM_TOPIC_REPLICATION_FACTOR", "USERSTREAM_TOPIC_MIN_INSYNC_REPLICAS",
        "USERSTREAM_KEYSPACE_REPLICATION_FACTOR", "USERSTREAM_TOPOLOGY"}
    assert cluster["USERSTREAM_TOPIC_REPLICATION_FACTOR"] == "3"
    assert cluster["USERSTREAM_TOPIC_MIN_INSYNC_REPLICAS"] == "2"
    assert cluster["USERSTREAM_KEYSPACE_REPLICATION_FACTOR"] == "3"
    assert '"host":"spark://127.0.0.1:7077"' in cluster["AIRFLOW_CONN_SPARK_DEFAULT"]
    assert '"host":"127.0.0.1,127.0.0.2,127.0.0.3"' in cluster["AIRFLOW_CONN_CASSANDRA_STREAM"]


def test_the_hops_code_is_byte_identical_whatever_the_topology(monkeypatch):
    """Building either topology's configuration writes nothing into the hops' code, and no hop
    reads the topology: it knows only its connections and settings."""
    before = _hop_files()
    for topology in ("single", "cluster"):
        monkeypatch.setenv("USERSTREAM_TOPOLOGY", topology)
        settings = Settings.from_env()
        active_services(settings)
        service_environment(settings, SECRETS)
    assert _hop_files() == before
    sources = {name: (PROJECT_ROOT / name).read_text() for name in before if name.endswith(".py")}
    readers = [name for name, text in sources.items()
               if "USERSTREAM_TOPOLOGY" in text or "local_stack" in text]
    assert readers == []


@pytest.mark.parametrize("value", ["cluster3", "", "Single"])
def test_an_unknown_topology_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("USERSTREAM_TOPOLOGY", value)
    if value == "":
        assert Settings.from_env().topology == "single"
        return
    with pytest.raises(ValueError, match="USERSTREAM_TOPOLOGY must be one of single, cluster"):
        Settings.from_env()


def test_each_topology_keeps_its_own_state_folder(monkeypatch):
    monkeypatch.delenv("USERSTREAM_STATE_DIR", raising=False)
    monkeypatch.setenv("USERSTREAM_TOPOLOGY", "cluster")
    cluster = Settings.from_env().state_dir
    monkeypatch.setenv("USERSTREAM_TOPOLOGY", "single")
    assert cluster != Settings.from_env().state_dir
    assert cluster.name == ".local-cluster"


def test_the_cassandra_connections_name_the_protocol(monkeypatch):
    """Cassandra 5 speaks protocol 5; a hook that offers newer ones first logs two warnings each
    time a task connects."""
    from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook

    for topology in ("single", "cluster"):
        environment = service_environment(_settings(topology), SECRETS)
        for conn_id in names.CASSANDRA_CONN_ROLES:
            conn = json.loads(environment[f"AIRFLOW_CONN_{conn_id.upper()}"])
            assert conn["extra"] == {"protocol_version": 5}, conn_id
    monkeypatch.setenv("AIRFLOW_CONN_CASSANDRA_DEFAULT",
                       service_environment(_settings("single"), SECRETS)[
                           "AIRFLOW_CONN_CASSANDRA_DEFAULT"])
    assert CassandraHook().cluster.protocol_version == 5
