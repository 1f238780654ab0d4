"""Pure parts of the stream hop: the table's columns derive from the .avsc (and the CQL matches),
the job's arguments, the keys and offsets the landing check verifies."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from include import cql
from include.assets import USERS_TOPIC
from include.schema_registry import USER_CREATED_SCHEMA
from include.stream.checkpoint import shortfall
from include.stream.job import STREAM_JOB, SparkRuntime, StreamJobConfig, report_path
from include.stream.verify import (
    expected_last_offsets,
    sampled_events,
    sampled_user_ids,
    stale_user_ids,
    uncounted_messages,
)
from tests.stream_job_module import load_stream_job

stream_users = load_stream_job()


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


def test_sampled_events_keep_the_newest_event_per_user_across_relay_runs():
    first = SimpleNamespace(extra={"sample_events": [["a", 5], ["b", 7]]})
    second = SimpleNamespace(extra={"sample_events": [["a", 9]]})
    legacy = SimpleNamespace(extra={"sample_user_ids": ["c"]})
    events = {USERS_TOPIC: [first, second, legacy]}
    assert sampled_events(_context(triggering_asset_events=events)) == {
        "a": 9, "b": 7, "c": None}
    assert sampled_events(_context(params={"verify_user_ids": ["x"]},
                                   triggering_asset_events=events)) == {"x": None}
    scratch = SimpleNamespace(extra={"topic": "scratch", "sample_events": [["s", 1]]})
    mixed = {USERS_TOPIC: [first, scratch]}
    assert sampled_events(_context(triggering_asset_events=mixed)) == {"a": 5, "b": 7}
    assert sampled_events(_context(params={"topic": "scratch"},
                                   triggering_asset_events=mixed)) == {"s": 1}


def test_expected_offsets_are_the_highest_each_partition_reached_on_this_topic():
    runs = [SimpleNamespace(extra={"topic": "users_created",
                                   "partition_last_offsets": {"0": 10, "1": 4}}),
            SimpleNamespace(extra={"topic": "users_created",
                                   "partition_last_offsets": {"0": 7, "2": 3}}),
            SimpleNamespace(extra={"topic": "other", "partition_last_offsets": {"0": 99}})]
    context = _context(triggering_asset_events={USERS_TOPIC: runs})
    assert expected_last_offsets(context, "users_created") == {0: 10, 1: 4, 2: 3}
    assert expected_last_offsets(context, "other") == {0: 99}
    explicit = _context(params={"expected_last_offsets": {"1": 5}},
                        triggering_asset_events={USERS_TOPIC: runs})
    assert expected_last_offsets(explicit, "users_created") == {1: 5}
    assert expected_last_offsets(_context(), "users_created") == {}


def test_shortfall_compares_last_offsets_with_next_offsets_to_read():
    # The relay reports the last offset written; the checkpoint holds the next one to read.
    assert shortfall({0: 10, 1: 4}, {0: 11, 1: 5}) == {}
    assert shortfall({0: 10, 1: 4}, {0: 6, 1: 5}) == {0: 5}
    assert shortfall({0: 10, 2: 0}, {0: 11}) == {2: 1}  # a partition never consumed


def test_every_consumed_message_must_be_accounted_for():
    balanced = {"messages": 10, "rows_written": 6, "dead_letters": 1, "superseded": 3}
    assert uncounted_messages(balanced) == 0
    assert uncounted_messages({**balanced, "rows_written": 4}) == 2
    assert uncounted_messages({**balanced, "dead_letters": 2}) == -1


def test_a_row_older_than_the_sampled_event_is_stale():
    expected = {"a": 9, "b": 7, "c": None, "d": 3}
    landed = {"a": 9, "b": 6, "c": 1}  # d is missing, which is another problem
    assert stale_user_ids(expected, landed) == ["b"]



def test_the_jobs_kafka_login_trusts_the_ca_the_connection_names():
    from include.stream.job import login_environment

    security = {"bootstrap.servers": "kafka:9092", "security.protocol": "SASL_SSL",
                "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "u", "sasl.password": "p",
                "ssl.ca.location": "/ca/ca.pem"}
    options = stream_users.kafka_login(login_environment("role", "secret", security))
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.ssl.truststore.type"] == "PEM"
    assert options["kafka.ssl.truststore.location"] == "/ca/ca.pem"
    assert "bootstrap" not in json.dumps(options)
    plaintext = {key: value for key, value in security.items() if key != "ssl.ca.location"}
    assert not any(key.startswith("kafka.ssl.") for key in
                   stream_users.kafka_login(login_environment("role", "secret", plaintext)))


@given(st.lists(st.tuples(st.integers(0, 3), st.one_of(st.none(), st.integers(0, 5)),
                          st.integers(0, 10**6)), min_size=1, max_size=60))
def test_batch_survey_matches_the_messages_it_counts(messages):
    """The survey adds up (partition, schema id) groups as Spark returns them: the same offsets,
    counts, schema ids and undecodable messages as counting each message."""
    groups: dict[tuple[int, int | None], list[int]] = {}
    for partition, schema_id, offset in messages:
        groups.setdefault((partition, schema_id), []).append(offset)
    rows = [(p, s, min(o), max(o), len(o)) for (p, s), o in groups.items()]
    survey = stream_users.BatchSurvey.from_rows(rows)
    readable = {1: "schema", 4: "schema"}
    partitions = {p for p, _, _ in messages}
    assert survey.offsets == {p: (min(o for q, _, o in messages if q == p),
                                  max(o for q, _, o in messages if q == p)) for p in partitions}
    assert survey.messages == len(messages)
    assert survey.schema_ids == sorted({s for _, s, _ in messages if s is not None})
    assert survey.undecodable(readable) == sum(1 for _, s, _ in messages if s not in readable)


def test_a_backlog_micro_batch_lasts_the_backlog_batch_time_and_a_window_does_not_wait():
    pause = stream_users.backlog_pause_s
    backlog, lasts = stream_users.BACKLOG_MESSAGES, stream_users.BACKLOG_BATCH_S
    assert pause("processing-time", 500, started=100.0, now=101.0) == 0.0
    assert pause("processing-time", backlog, started=100.0, now=101.0) == lasts - 1.0
    assert pause("processing-time", backlog * 10, started=100.0, now=100.0 + lasts + 3) == 0.0
    # A drain to the end (tests, replays, benchmarks) never waits.
    assert pause("available-now", backlog * 10, started=100.0, now=101.0) == 0.0
