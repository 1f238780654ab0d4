"""Each DAG's contract: schedule, outlets, tags and retries; parsing makes no connection look-up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "airflow_home" / "dags"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    # With no connection defined anywhere, a DAG file that looked one up at parse time would fail.
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AIRFLOW_CONN_")}
    try:
        bag = DagBag(dag_folder=str(DAGS_FOLDER))
    finally:
        os.environ.update(saved)
    assert bag.import_errors == {}
    return bag


def test_ingest_users_contract(dagbag):
    dag = dagbag.dags["ingest_users"]
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.timetable.summary == "* * * * *"
    assert dag.max_active_runs == 2
    assert set(dag.tags) == {"userstream", "ingest"}
    (task,) = dag.tasks
    assert task.retries == 3 and task.retry_exponential_backoff
    assert [a.uri for a in task.outlets] == [
        "postgres://127.0.0.1:5433/userstream/staging/user_events"]


def _assert_on_asset_with_safety_net(dag, cron: str, asset_uri: str) -> None:
    assert type(dag.timetable).__name__ == "AssetOrTimeSchedule"
    assert dag.timetable.summary == f"Asset or {cron}"
    assert [key.uri for key, _ in dag.timetable.asset_condition.iter_assets()] == [asset_uri]
    assert dag.max_active_runs == 1


def test_relay_user_events_contract(dagbag):
    dag = dagbag.dags["relay_user_events"]
    _assert_on_asset_with_safety_net(dag, "*/5 * * * *",
                                     "postgres://127.0.0.1:5433/userstream/staging/user_events")
    assert set(dag.tags) == {"userstream", "relay"}
    (task,) = dag.tasks
    assert task.retries == 5 and task.retry_exponential_backoff
    assert [a.uri for a in task.outlets] == ["kafka://127.0.0.1:9092/users_created"]


def test_stream_users_to_cassandra_contract(dagbag):
    dag = dagbag.dags["stream_users_to_cassandra"]
    _assert_on_asset_with_safety_net(dag, "*/10 * * * *", "kafka://127.0.0.1:9092/users_created")
    assert set(dag.tags) == {"userstream", "stream"}
    tasks = {t.task_id: t for t in dag.tasks}
    assert set(tasks) == {"prepare_landing", "ensure_stream_query", "run_stream_job",
                          "verify_landed"}
    assert tasks["prepare_landing"].downstream_task_ids == {"ensure_stream_query",
                                                            "run_stream_job"}
    assert tasks["ensure_stream_query"].downstream_task_ids == {"verify_landed"}
    assert tasks["run_stream_job"].downstream_task_ids == {"verify_landed"}
    assert tasks["verify_landed"].downstream_task_ids == set()
    assert tasks["verify_landed"].trigger_rule == "none_failed_min_one_success"
    assert type(tasks["ensure_stream_query"]).__mro__[1].__name__ == "TriggerDagRunOperator"
    assert tasks["ensure_stream_query"].trigger_dag_id == "run_stream_query"
    submit = tasks["run_stream_job"]
    assert [c.__name__ for c in type(submit).__mro__[:2]] == ["StreamUsersOperator",
                                                              "SparkSubmitOperator"]
    assert submit._conn_id == "spark_default"
    sensor = tasks["verify_landed"]
    assert sensor.mode == "reschedule" and sensor.retries == 0
    # The provider's CassandraRecordSensor would load the Cassandra driver at parse time.
    assert [c.__name__ for c in type(sensor).__mro__[:2]] == ["LandedUsersSensor",
                                                              "BaseSensorOperator"]
    assert all(t.on_failure_callback for t in dag.tasks)
    assert [a.uri for a in sensor.outlets] == [
        "cassandra://127.0.0.1:9042/userstream/users"]


def test_run_stream_query_contract(dagbag):
    dag = dagbag.dags["run_stream_query"]
    assert type(dag.timetable).__name__ == "NullTimetable" and dag.max_active_runs == 1
    assert dag.is_paused_upon_creation is False
    (task,) = dag.tasks
    assert type(task).__name__ == "StreamUsersOperator" and task.long_lived
    assert task.retries == 8 and task.retry_exponential_backoff
    assert task.execution_timeout is None
    assert "-XX:TieredStopAtLevel" not in task.conf["spark.driver.extraJavaOptions"]
    assert [type(c).__name__ for c in task.on_retry_callback] == ["WebhookAlert"]


def test_every_task_of_every_dag_alerts_through_the_webhook_when_it_finally_fails(dagbag):
    assert set(dagbag.dags) == {"ingest_users", "relay_user_events", "stream_users_to_cassandra",
                                "run_stream_query", "prune_staging", "replay_user_events"}
    for dag_id in dagbag.dags:
        for task in dagbag.dags[dag_id].tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert [type(c).__name__ for c in callbacks] == ["WebhookAlert"], (dag_id, task)
            assert callbacks[0].http_conn_id == "alerts_webhook"


def test_maintenance_dags_contract(dagbag):
    retention = dagbag.dags["prune_staging"]
    assert retention.timetable.summary == "17 3 * * *" and retention.max_active_runs == 1
    (prune,) = retention.tasks
    assert [a.uri for a in prune.outlets] == ["postgres://127.0.0.1:5433/userstream/staging/pruned"]
    replay = dagbag.dags["replay_user_events"]
    assert type(replay.timetable).__name__ == "NullTimetable" and replay.max_active_runs == 1
    tasks = {t.task_id: t for t in replay.tasks}
    assert tasks["mark_for_replay"].downstream_task_ids == {"relay_replayed"}
    assert [a.uri for a in tasks["relay_replayed"].outlets] == [
        "kafka://127.0.0.1:9092/users_created"]
