"""The alert every hop sends: its hop, problem, counts and examples, and where it happened."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from include import names
from include.alerts import (
    EVENTS_FAILED_ENCODING,
    TASK_FAILED,
    AlertNotDelivered,
    failure_alert,
    hop_of,
    post_alert,
    run_alert,
)
from include.relay.outbox import RelayStats
from include.relay.task import skip_reason
from include.stream.verify import CASSANDRA_UNREACHABLE


def _ti(dag_id: str = names.STREAM_DAG_ID, task_id: str = "verify_landed"):
    return SimpleNamespace(dag_id=dag_id, run_id="r1", task_id=task_id, try_number=1,
                           log_url="http://airflow/log")


def test_each_dag_is_named_by_its_hop():
    assert [hop_of(d) for d in names.PIPELINE_DAG_IDS] == ["ingest", "relay", "stream"]


def test_failure_alert_names_the_hop_the_run_the_problem_and_the_missing_keys():
    task = SimpleNamespace(problem=CASSANDRA_UNREACHABLE, missing=["u1", "u2"],
                           checked=["u1", "u2"], problem_detail="Cassandra at x is unreachable",
                           counts={"checked": 2}, examples=[{"user_id": "u1"}])
    alert = failure_alert({"ti": _ti(), "task": task, "exception": TimeoutError("timed out")})
    assert alert["hop"] == "stream" and alert["problem"] == CASSANDRA_UNREACHABLE
    assert alert["missing_user_ids"] == ["u1", "u2"] and alert["missing_count"] == 2
    assert alert["counts"] == {"checked": 2} and alert["examples"] == [{"user_id": "u1"}]
    assert (alert["dag_id"], alert["run_id"], alert["task_id"]) == (
        names.STREAM_DAG_ID, "r1", "verify_landed")
    assert alert["log_url"] == "http://airflow/log"
    assert alert["error"] == "TimeoutError: timed out"
    assert "stream hop" in alert["summary"]


def test_a_plain_task_failure_says_task_failed_with_the_exception():
    ti = _ti(names.INGEST_DAG_ID, "ingest_window")
    plain = failure_alert({"ti": ti, "task": SimpleNamespace(), "exception": RuntimeError("x")})
    assert plain["hop"] == "ingest" and plain["problem"] == TASK_FAILED
    assert plain["detail"] == "x" and plain["counts"] == {} and plain["examples"] == []


def test_run_alert_keeps_a_few_examples():
    alert = run_alert({"ti": _ti(names.RELAY_DAG_ID, "relay_outbox")}, EVENTS_FAILED_ENCODING,
                      "2 failed", {"events_failed": 20},
                      [{"event_id": i, "reason": "r"} for i in range(20)])
    assert alert["hop"] == "relay" and len(alert["examples"]) == 10


def test_the_relay_skips_only_when_nothing_was_sent_and_says_why():
    assert skip_reason(RelayStats(sent=3, failed_encoding=1)) is None
    assert "no unpublished event" in skip_reason(RelayStats())
    assert "none of the 4 claimed event(s) could be sent" in skip_reason(
        RelayStats(failed_encoding=4))


def test_an_undeliverable_alert_raises_and_a_missing_webhook_only_logs(monkeypatch):
    # A real refused connection (a closed port on this machine), not a mock.
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_CLOSED",
                       '{"conn_type": "http", "host": "http://127.0.0.1:9/alerts"}')
    alert = {"hop": "relay", "problem": "events_failed_encoding"}
    with pytest.raises(AlertNotDelivered, match="NOT DELIVERED to connection 'alerts_closed'"):
        post_alert(alert, "alerts_closed", attempts=2, pause_s=0)
    monkeypatch.delenv("AIRFLOW_CONN_ALERTS_NOWHERE", raising=False)
    assert post_alert(alert, "alerts_nowhere", attempts=1) is False
