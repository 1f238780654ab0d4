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
    assert dag.max_active_runs == 4
    assert set(dag.tags) == {"userstream", "ingest"}
    (task,) = dag.tasks
    assert task.retries == 3 and task.retry_exponential_backoff
    assert [a.uri for a in task.outlets] == [
        "postgres://127.0.0.1:5433/userstream/staging/user_events"]


def test_relay_user_events_contract(dagbag):
    dag = dagbag.dags["relay_user_events"]
    assert type(dag.timetable).__name__ == "AssetOrTimeSchedule"
    assert dag.timetable.summary == "Asset or */5 * * * *"
    assert [key.uri for key, _ in dag.timetable.asset_condition.iter_assets()] == [
        "postgres://127.0.0.1:5433/userstream/staging/user_events"]
    assert dag.max_active_runs == 1
    assert set(dag.tags) == {"userstream", "relay"}
    (task,) = dag.tasks
    assert task.retries == 5 and task.retry_exponential_backoff
    assert [a.uri for a in task.outlets] == ["kafka://127.0.0.1:9092/users_created"]
