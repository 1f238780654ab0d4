"""One record contract, three hops: values at each limit go through ingest, the relay and the
stream job and land in Cassandra exactly as the API gave them; values one step beyond are stopped
by each hop on its own (ingest quarantines, the relay marks failed, the stream dead-letters), when
fed to it directly. All on scratch objects."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from confluent_kafka import Producer

from include.ingest.window import ingest_window
from include.provisioning import TopicSpec, apply_cql, ensure_topic
from include.randomuser.client import RandomUserClient, RetryPolicy
from include.relay.avro import load_parsed_schema
from include.relay.kafka import PRODUCER_SETTINGS
from include.relay.outbox import relay_pending
from local_stack.services import cassandra_session, kafka_client, pg_connect
from local_stack.stream_harness import (
    cassandra_rows,
    job_config,
    produce_raw,
    register_subject,
    run_job,
)
from tests.integration.relay_support import fail_pending_events
from tests.integration.test_ingest_hostile import ServedBody, fresh_users, hostile_window
from tests.integration.test_stream_hostile import framed, record_with
from tests.unit.test_normalize_hostile import (
    INT_PATHS,
    NUMBER_PATHS,
    TEXT_PATHS,
    TIME_PATHS,
    set_path,
)

AT_LIMIT = {
    TEXT_PATHS["first_name"]: "é" * 1000,
    TEXT_PATHS["last_name"]: "𝄞" * 1000,  # 1,000 characters, 2,000 UTF-16 units, 4,000 bytes
    TEXT_PATHS["city"]: "Zürich\u2028\u0085\ufeff\u200b🙂",
    TEXT_PATHS["id_value"]: "",
    TEXT_PATHS["postcode"]: 2**63 - 1,
    INT_PATHS["street_number"]: 2**31 - 1,
    INT_PATHS["age"]: -(2**31),
    NUMBER_PATHS["latitude"]: "90",
    NUMBER_PATHS["longitude"]: "-180.0000",
    TIME_PATHS["dob"]: "1900-01-01T00:00:00.000Z",
    TIME_PATHS["registered_at"]: "9999-12-31T23:59:59.999Z",
}
# name: (the API's path, the value one step beyond at ingest, the same in the outbox's payload
# for the relay, the same in an Avro record for the stream; None where the format cannot carry it:
# JSON has no infinity, an Avro int no 2^31).
BEYOND = {
    "first_name 1001": (TEXT_PATHS["first_name"], "é" * 1001, {"first_name": "é" * 1001},
                        {"first_name": "é" * 1001}),
    "street_number 2^31": (INT_PATHS["street_number"], 2**31, {"street_number": 2**31},
                           None),
    "latitude not finite": (NUMBER_PATHS["latitude"], "1e400", None,
                            {"latitude": float("inf")}),
    "dob 1899": (TIME_PATHS["dob"], "1899-12-31T23:59:59.999Z",
                 {"dob": "1899-12-31T23:59:59.999+00:00"},
                 {"dob": datetime(1899, 12, 31, 23, 59, 59, 999000, UTC)}),
    "DEL in a city": (TEXT_PATHS["city"], "Zü\x7frich", {"city": "Zü\x7frich"},
                      {"city": "Zü\x7frich"}),
}
RELAY_BEYOND = [payload for _, _, payload, _ in BEYOND.values() if payload is not None]
STREAM_BEYOND = {name: record for name, (_, _, _, record) in BEYOND.items() if record is not None}


def _cassandra_value(value):
    """Timestamps as whole epoch milliseconds: the driver turns Cassandra's exact milliseconds
    into a datetime through a float, a few microseconds off near the year 9999."""
    return _millis(value.replace(tzinfo=UTC)) if isinstance(value, datetime) else value


def _millis(value: datetime) -> int:
    return round((value - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))


def test_values_at_each_limit_cross_all_hops_unchanged_and_beyond_stops_at_each(
        stack, scratch_db, tmp_path):
    topic = f"contract-{uuid.uuid4().hex[:8]}"
    keyspace = f"contract_{uuid.uuid4().hex[:8]}"
    kafka = kafka_client(stack.settings)
    ensure_topic(kafka, TopicSpec(topic, 3))
    schema_id = register_subject(stack.settings, topic)
    at_limit = fresh_users(5)
    for user in at_limit:
        for path, value in AT_LIMIT.items():
            set_path(user, path, value)
    beyond = fresh_users(len(BEYOND))
    for user, (path, value, _, _) in zip(beyond, BEYOND.values(), strict=True):
        set_path(user, path, value)

    with pg_connect(stack, scratch_db) as conn:
        fail_pending_events(conn)
        served = ServedBody(at_limit + beyond)
        window = hostile_window()
        result = ingest_window(window, RandomUserClient(served, RetryPolicy(max_attempts=1)),
                               conn, users_per_window=len(served_results(served)))
        assert (result.inserted, result.rejected) == (5, len(BEYOND))  # ingest stops beyond

        outbox_beyond = []  # fed to the relay directly, as if ingest had let them through
        for change in RELAY_BEYOND:
            user_id = str(uuid.uuid4())
            outbox_beyond.append(conn.execute(
                "INSERT INTO staging.user_events (user_id, content_hash, payload) "
                "VALUES (%s, 'h', %s) RETURNING id",
                (user_id, json.dumps({**change, "user_id": user_id}))).fetchone()[0])
        producer = Producer({**PRODUCER_SETTINGS, **kafka})
        stats = relay_pending(conn, producer, topic, schema_id, load_parsed_schema())
        assert (stats.sent, stats.failed_encoding) == (5, len(RELAY_BEYOND))  # stopped beyond
        failures = [r[0] for r in conn.execute(
            "SELECT failure FROM staging.user_events WHERE id = ANY(%s)", (outbox_beyond,))]
        assert all("breaks the record contract" in f or "cannot encode" in f for f in failures)

    stream_beyond = [  # fed to the stream directly, as if the relay had let them through
        (name.encode(), framed(schema_id, record_with(70_000 + i, **change)))
        for i, (name, change) in enumerate(STREAM_BEYOND.items())]
    produce_raw(stack.settings, topic, stream_beyond)
    cluster, session = cassandra_session(stack.settings, timeout=30)
    try:
        apply_cql(session, keyspace)
        report = run_job(stack.settings, job_config(
            stack.settings, topic, keyspace, tmp_path / "checkpoint", tmp_path / "r.json"),
            tmp_path / "run.log")
        assert (report["rows_written"], report["dead_letters"]) == (5, len(STREAM_BEYOND))
        rows = {str(r.user_id): r for r in cassandra_rows(session, keyspace)}
        for user in at_limit:
            row = rows[user["login"]["uuid"]]
            for path, value in AT_LIMIT.items():
                field = _field(path)
                expected = _expected_landed(field, value)
                assert _cassandra_value(getattr(row, field)) == expected, field
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.shutdown()


def served_results(served: ServedBody) -> list:
    return json.loads(served.body)["results"]


def _field(path: tuple[str, ...]) -> str:
    for table in (TEXT_PATHS, INT_PATHS, NUMBER_PATHS, TIME_PATHS):
        for field, field_path in table.items():
            if field_path == path:
                return field
    raise LookupError(path)


def _expected_landed(field: str, value):
    if field in TEXT_PATHS:
        return str(value)
    if field in NUMBER_PATHS:
        return float(value)
    if field in TIME_PATHS:
        return _millis(datetime.fromisoformat(value.replace("Z", "+00:00")))
    return value
