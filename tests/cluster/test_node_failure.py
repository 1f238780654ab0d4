"""Losing one node of the cluster in the middle of a hop loses nothing: ingest windows are
backfilled through the real scheduler, a node is killed with SIGKILL while a hop runs, and every
staged user of those windows ends up as exactly one Cassandra row carrying the user's event, every
event is on the topic, and every DAG run ends in success (after Airflow's own retries). Then the
node comes back and rejoins, and the cluster reports healthy. The next test's windows run on the
cluster it left; the last test runs a window with no failure at all.

The stream hop is the pipeline's long-lived query: the first window starts it, and the node
failures hit it while it runs a micro-batch.

The tests run in file order (each leaves the cluster healthy for the next); each test backfills
two windows."""

from __future__ import annotations

from datetime import datetime

from confluent_kafka.admin import AdminClient

from include import names
from local_stack import processes
from local_stack.airflow_api import AirflowApi, as_dict
from local_stack.cluster_services import SPARK_WORKERS, spark_master_state, spark_worker_host
from local_stack.services import Context, kafka_client
from tests.cluster.nodes import (
    batch_in_flight,
    kill_node,
    pending_hints,
    restart_node,
    supervisor_group,
    wait_cluster_healthy,
    wait_until,
)
from tests.pipeline_checks import RELAY, run_windows, stream_query_runs

RELAY_TASK = "relay_outbox"
WINDOWS_PER_FAILURE = 2


def _running_task(api: AirflowApi, dag_id: str, task_id: str, since: datetime) -> dict | None:
    for run in api.runs(dag_id, order_by="-start_date", state=["running"]):
        if run["start_date"] and datetime.fromisoformat(run["start_date"]) >= since:
            ti = as_dict(api.task_instances.get_task_instance(dag_id, run["dag_run_id"], task_id))
            if ti["state"] == "running":
                return ti
    return None


def _partition_leader(stack: Context) -> int:
    admin = AdminClient(kafka_client(stack.settings))
    topic = admin.list_topics(names.USERS_TOPIC, timeout=10).topics[names.USERS_TOPIC]
    return topic.partitions[0].leader


def test_losing_the_partition_leader_mid_relay_loses_nothing(stack):
    def kill_leader(api: AirflowApi, started: datetime) -> str:
        wait_until(lambda: _running_task(api, RELAY, RELAY_TASK, started), "a relay running",
                   timeout_s=600, poll_s=0.3)
        node = f"kafka-{_partition_leader(stack)}"
        kill_node(stack, node)
        return node

    node = run_windows(stack, WINDOWS_PER_FAILURE, kill_leader)
    restart_node(stack, node)
    health = wait_cluster_healthy(stack)
    assert all("3 broker(s)" in health[f"kafka-{i}"] for i in (1, 2, 3)), health


def test_losing_a_cassandra_node_mid_stream_loses_nothing(stack):
    def kill_cassandra(api: AirflowApi, started: datetime) -> str:
        wait_until(lambda: batch_in_flight(stack)
                   and stream_query_runs(stack),
                   "the stream query in a micro-batch",
                   timeout_s=600, poll_s=0.5)
        kill_node(stack, "cassandra-3")
        return "cassandra-3"

    node = run_windows(stack, WINDOWS_PER_FAILURE, kill_cassandra)
    assert pending_hints(stack) > 0, "no node kept hints for the one that was down"
    restart_node(stack, node)
    wait_cluster_healthy(stack)
    wait_until(lambda: pending_hints(stack) == 0, "the hints replayed", timeout_s=300, poll_s=3)


def test_losing_a_spark_worker_mid_batch_loses_nothing(stack):
    def kill_busy_worker(api: AirflowApi, started: datetime) -> str:
        def busy_worker() -> str | None:
            if not (batch_in_flight(stack) and stream_query_runs(stack)):
                return None
            names_by_host = {spark_worker_host(stack.settings, i): f"spark-worker-{i}"
                             for i in range(1, SPARK_WORKERS + 1)}
            for worker in spark_master_state(stack).get("workers", []):
                if worker.get("state") == "ALIVE" and worker.get("coresused", 0) > 0:
                    return names_by_host[worker["host"]]
            return None

        node = wait_until(busy_worker, "a micro-batch running on a worker's executor",
                          timeout_s=600, poll_s=0.5)
        kill_node(stack, node)
        return node

    node = run_windows(stack, WINDOWS_PER_FAILURE, kill_busy_worker)
    restart_node(stack, node)
    wait_cluster_healthy(stack)


def test_losing_the_airflow_worker_that_runs_the_relay_loses_nothing(stack):
    workers = ("airflow-worker-1", "airflow-worker-2")
    retried: list[dict] = []

    def kill_relay_worker(api: AirflowApi, started: datetime) -> str:
        def relay_and_worker() -> tuple[dict, str] | None:
            ti = _running_task(api, RELAY, RELAY_TASK, started)
            if not ti:
                return None
            group = supervisor_group(ti["id"])
            for name in workers:
                tracked = processes.running(stack.settings.run_dir, name)
                if tracked and group == tracked.pid:
                    return ti, name
            return None

        ti, node = wait_until(relay_and_worker, "a relay running on a worker", timeout_s=600,
                              poll_s=0.3)
        kill_node(stack, node)
        retried.append(ti)
        return node

    node = run_windows(stack, WINDOWS_PER_FAILURE, kill_relay_worker)
    (killed,) = retried
    api = AirflowApi(stack)
    after = as_dict(api.task_instances.get_task_instance(RELAY, killed["dag_run_id"], RELAY_TASK))
    assert after["state"] == "success" and after["try_number"] > killed["try_number"], after
    restart_node(stack, node)
    wait_cluster_healthy(stack)


def test_with_every_node_back_a_window_lands_as_usual(stack):
    before = wait_cluster_healthy(stack)
    run_windows(stack, 1)
    after = wait_cluster_healthy(stack)
    assert set(before) == set(after)
