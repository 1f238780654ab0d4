"""Pure parts of the stream hop: the table's columns derive from the .avsc (and the CQL matches),
the job's arguments, the keys the sensor verifies, and the alert's body."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from include import cql
from include.assets import USERS_TOPIC
from include.schema_registry import USER_CREATED_SCHEMA
from include.stream.alerts import alert_payload
from include.stream.job import STREAM_JOB, SparkRuntime, StreamJobConfig, report_path
from include.stream.verify import CASSANDRA_UNREACHABLE, sampled_user_ids


def _load_job_module():
    spec = importlib.util.spec_from_file_location("stream_users", STREAM_JOB)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


stream_users = _load_job_module()


def _cql_columns(table: str) -> list[tuple[str, str]]:
    (statement,) = [s for s in cql.statements("ks") if f"TABLE IF NOT EXISTS ks.{table} " in s]
    body = statement[statement.index("(") + 1: statement.rindex(")")]
    columns = []
    for line in body.splitlines():
        match = re.match(r"\s*(\w+) (\w+)(?: PRIMARY KEY)?,?$", line)
        if match:
            columns.append((match.group(1), match.group(2)))
    return columns


def test_users_table_columns_are_the_avsc_fields_plus_provenance():
    avsc = json.loads(USER_CREATED_SCHEMA.read_text())
    derived = stream_users.table_columns(avsc)
    in_cql = _cql_columns("users")
    assert len(in_cql) == len(derived) and dict(in_cql) == dict(derived)
    assert [name for name, _ in derived[: len(avsc["fields"])]] == [
        f["name"] for f in avsc["fields"]]
    assert dict(derived)["user_id"] == "uuid"
    assert dict(derived)["dob"] == "timestamp"
    assert dict(derived)["latitude"] == "double"


def test_an_avro_type_without_a_column_mapping_is_refused():
    with pytest.raises(ValueError, match="no column mapping"):
        stream_users.table_columns({"fields": [{"name": "x", "type": "fixed"}]})
    with pytest.raises(ValueError, match="unions"):
        stream_users.table_columns({"fields": [{"name": "x", "type": ["null", "int", "string"]}]})


def test_cql_fills_in_the_keyspace_and_refuses_anything_but_an_identifier():
    statements = cql.statements("scratch_ks")
    assert all("${" not in s for s in statements)
    assert statements[0].startswith("CREATE KEYSPACE IF NOT EXISTS scratch_ks")
    with pytest.raises(ValueError):
        cql.statements("ks; DROP KEYSPACE x")


def test_job_arguments_parse_back_in_the_job():
    config = StreamJobConfig("k:9092", "http://r/apis/ccompat/v7", "c", 9042, Path("/ck"),
                             topic="t", keyspace="ks", report=Path("/r.json"),
                             max_offsets_per_trigger=10)
    args = stream_users.parse_args(config.arguments())
    assert (args.bootstrap_servers, args.topic, args.keyspace, args.checkpoint) == (
        "k:9092", "t", "ks", "/ck")
    assert (args.trigger, args.max_offsets_per_trigger, args.report) == (
        "available-now", 10, "/r.json")
    command = SparkRuntime("/s/spark-submit", "a.jar,b.jar", "/s/python").command(
        "local[2]", config)
    assert command[:3] == ["/s/spark-submit", "--master", "local[2]"]
    assert str(STREAM_JOB) in command and "spark.ui.enabled=false" in command


def test_a_long_lived_query_passes_its_stop_rules_to_the_job():
    config = StreamJobConfig("k:9092", "http://r", "c", 9042, Path("/ck"),
                             trigger="processing-time", interval="3 seconds",
                             stop_when_idle_s=45, max_run_s=600)
    args = stream_users.parse_args(config.arguments())
    assert (args.trigger, args.interval, args.stop_when_idle_s, args.max_run_s) == (
        "processing-time", "3 seconds", 45.0, 600.0)


def test_a_long_lived_query_stops_when_idle_or_out_of_time_and_not_before():
    should_stop = stream_users.should_stop
    # started at 0, last batch at 100
    assert should_stop(120, 100, 0, idle_s=30, max_run_s=600) is None
    assert "no message for 30s" in should_stop(130, 100, 0, idle_s=30, max_run_s=600)
    assert "limit" in should_stop(600, 590, 0, idle_s=30, max_run_s=600)
    assert should_stop(10_000, 0, 0, idle_s=0, max_run_s=0) is None  # no rule: runs on


def test_report_paths_are_safe_file_names():
    path = report_path("asset_triggered__2026-01-01T00:00:00+00:00_ab/c", 2, Path("/state"))
    assert path.parent == Path("/state/reports")
    assert "/" not in path.name and path.name.endswith(".try2.json")


def _context(**kwargs):
    return {"params": {}, "triggering_asset_events": {}, **kwargs}


def test_sensor_keys_come_from_params_then_asset_events_then_the_report():
    event = SimpleNamespace(extra={"sample_user_ids": ["a", "b", "a"]})
    assert sampled_user_ids(_context(params={"verify_user_ids": ["x"]},
                                     triggering_asset_events={USERS_TOPIC: [event]})) == ["x"]
    assert sampled_user_ids(_context(triggering_asset_events={USERS_TOPIC: [event]})) == [
        "a", "b"]
    ti = SimpleNamespace(xcom_pull=lambda task_ids: {"sample_user_ids": ["r1", "r2"]})
    assert sampled_user_ids(_context(ti=ti), report_task_id="run_stream_job") == ["r1", "r2"]
    assert sampled_user_ids(_context()) == []


def test_alert_names_the_run_the_problem_and_the_missing_keys():
    ti = SimpleNamespace(dag_id="d", run_id="r1", task_id="verify_landed", try_number=1,
                         log_url="http://airflow/log")
    task = SimpleNamespace(problem=CASSANDRA_UNREACHABLE, missing=["u1", "u2"],
                           checked=["u1", "u2"], problem_detail="Cassandra at x is unreachable")
    alert = alert_payload({"ti": ti, "task": task, "exception": TimeoutError("timed out")})
    assert alert["problem"] == CASSANDRA_UNREACHABLE
    assert alert["missing_user_ids"] == ["u1", "u2"] and alert["missing_count"] == 2
    assert (alert["dag_id"], alert["run_id"], alert["task_id"]) == ("d", "r1", "verify_landed")
    assert alert["log_url"] == "http://airflow/log"
    assert alert["error"] == "TimeoutError: timed out"
    plain = alert_payload({"ti": ti, "task": SimpleNamespace(), "exception": RuntimeError("x")})
    assert plain["problem"] == "task_failed" and plain["detail"] == "x"
