"""The stream job against the real Kafka, registry, Spark and Cassandra: every record lands once
with the right values, a user repeated in a batch lands from its newest event, replays are
harmless, a killed run resumes without loss, poison messages become dead letters, and an evolved
schema keeps decoding."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import uuid
from datetime import datetime

from include.relay.avro import HEADER, encode, event_record, load_parsed_schema
from include.schema_registry import load_schema_text
from local_stack import processes
from local_stack.stream_harness import (
    cassandra_rows,
    job_config,
    produce_raw,
    produce_users,
    register_subject,
    run_job,
    start_job,
)

EVENTS = 20_000
VALUE_COLUMNS = ("event_id", "first_name", "last_name", "email", "phone", "cell", "postcode",
                 "street_number", "latitude", "longitude", "dob", "age", "registered_at",
                 "id_value", "kafka_partition", "kafka_offset")


def _timestamp_ms(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp() * 1000)


def _values(row) -> tuple:
    return tuple(getattr(row, c) for c in VALUE_COLUMNS)


def test_every_record_lands_once_and_a_replay_changes_nothing(stack, cassandra, tmp_path):
    keyspace, session = cassandra
    topic = f"stream-{uuid.uuid4().hex[:8]}"
    users = produce_users(stack.settings, topic, EVENTS)
    checkpoint = tmp_path / "checkpoint"
    report = run_job(stack.settings, job_config(stack.settings, topic, keyspace, checkpoint,
                                                tmp_path / "r1.json"), tmp_path / "run1.log")
    assert report["messages"] == EVENTS
    assert report["rows_written"] == EVENTS
    assert report["dead_letters"] == 0
    # Its deliberate unlogged batches are not answered by a logged warning each (2 KB a line).
    assert "generated server side warning" not in (tmp_path / "run1.log").read_text()

    rows = cassandra_rows(session, keyspace)
    assert len(rows) == EVENTS
    assert {str(r.user_id) for r in rows} == set(users)
    for row in rows:
        sent = users[str(row.user_id)]
        assert row.email == sent["email"]  # as given: no hop changes a value
        assert (row.first_name, row.last_name, row.postcode, row.cell, row.id_value) == (
            sent["first_name"], sent["last_name"], sent["postcode"], sent["cell"],
            sent["id_value"])
        assert (row.street_number, row.age) == (sent["street_number"], sent["age"])
        assert (row.latitude, row.longitude) == (sent["latitude"], sent["longitude"])
        assert int(row.dob.timestamp() * 1000) == _timestamp_ms(sent["dob"])
        assert int(row.registered_at.timestamp() * 1000) == _timestamp_ms(sent["registered_at"])
        assert row.ingestion_time is not None and row.event_time is not None
    before = {r.user_id: _values(r) for r in rows}

    # The same offsets again from a fresh checkpoint: upserts, so nothing is added or changed.
    shutil.rmtree(checkpoint)
    replay = run_job(stack.settings, job_config(stack.settings, topic, keyspace, checkpoint,
                                                tmp_path / "r2.json"), tmp_path / "run2.log")
    assert replay["rows_written"] == EVENTS
    after = {r.user_id: _values(r) for r in cassandra_rows(session, keyspace)}
    assert after == before

    # With the checkpoint kept, a run has nothing new to do.
    idle = run_job(stack.settings, job_config(stack.settings, topic, keyspace, checkpoint,
                                              tmp_path / "r3.json"), tmp_path / "run3.log")
    assert idle["messages"] == 0 and idle["rows_written"] == 0


def test_a_user_repeated_in_one_batch_lands_once_from_its_newest_event(
        stack, cassandra, tmp_path):
    keyspace, session = cassandra
    topic = f"stream-repeat-{uuid.uuid4().hex[:8]}"
    # The same users twice (same seed): the newer events first, so the older ones sit at later
    # offsets and only the ranking by event_id, not the arrival order, can pick the newest.
    newer = produce_users(stack.settings, topic, 300, seed=31, first_event_id=50_000)
    older = produce_users(stack.settings, topic, 300, seed=31, first_event_id=1)
    assert set(newer) == set(older)
    report = run_job(stack.settings, job_config(stack.settings, topic, keyspace,
                                                tmp_path / "checkpoint", tmp_path / "r.json"),
                     tmp_path / "run.log")
    assert (report["batches"], report["messages"]) == (1, 600)
    assert report["rows_written"] == 300
    landed = {str(r.user_id): (r.event_id, r.last_name)
              for r in cassandra_rows(session, keyspace) if str(r.user_id) in newer}
    assert set(landed) == set(newer)
    assert all(event_id >= 50_000 for event_id, _ in landed.values())
    assert all(landed[u][1] == newer[u]["last_name"] for u in newer)


def test_a_killed_run_resumes_from_its_checkpoint_without_loss(stack, cassandra, tmp_path):
    keyspace, session = cassandra
    topic = f"stream-kill-{uuid.uuid4().hex[:8]}"
    users = produce_users(stack.settings, topic, EVENTS, seed=11)
    checkpoint = tmp_path / "checkpoint"
    config = job_config(stack.settings, topic, keyspace, checkpoint, tmp_path / "r1.json",
                        max_offsets_per_trigger=2_000)
    process = start_job(stack.settings, config, tmp_path / "killed.log")
    deadline = time.monotonic() + 300
    landed = 0
    while landed <= 3_000:  # batch 1 is being written, so batch 0 is committed

        assert process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        assert time.monotonic() < deadline, f"only {landed} rows landed within 300 s"
        time.sleep(1)
        landed = sum(1 for r in cassandra_rows(session, keyspace) if str(r.user_id) in users)
    # Mid-run, every port the driver opened (block manager, RPC) is on the stack's loopback.
    job_pids = processes.service_members(process.pid)
    exposed = [s for s in processes.listening_sockets(job_pids) if not s.on_loopback]
    assert not exposed, exposed
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait(60) != 0
    assert landed < EVENTS, "the run finished before it could be killed"

    report = run_job(stack.settings, config, tmp_path / "resumed.log")
    assert report["rows_written"] < EVENTS, "the resumed run started over instead of resuming"
    ours = [r for r in cassandra_rows(session, keyspace) if str(r.user_id) in users]
    assert len(ours) == EVENTS
    assert {str(r.user_id) for r in ours} == set(users)


def test_poison_messages_become_dead_letters_and_an_evolved_schema_still_lands(
        stack, cassandra, tmp_path):
    keyspace, session = cassandra
    topic = f"stream-poison-{uuid.uuid4().hex[:8]}"
    old_users = produce_users(stack.settings, topic, 300, seed=21)

    evolved = json.loads(load_schema_text())
    evolved["fields"].append({"name": "middle_name", "type": ["null", "string"],
                              "default": None})
    evolved_text = json.dumps(evolved)
    evolved_id = register_subject(stack.settings, topic, evolved_text)
    new_users = produce_users(stack.settings, topic, 300, seed=22, first_event_id=10_000,
                              schema_id=evolved_id, schema=load_parsed_schema(evolved_text))

    v1_id = register_subject(stack.settings, topic)
    assert evolved_id != v1_id
    good = encode(v1_id, load_parsed_schema(), event_record(
        1, {"user_id": str(uuid.uuid4())}, "h", datetime.now().astimezone()))
    not_a_uuid = encode(v1_id, load_parsed_schema(), event_record(
        2, {"user_id": "not-a-uuid"}, "h", datetime.now().astimezone()))
    poison = {
        "wrong magic byte": b"\x01" + good[1:],
        "unknown schema id": HEADER.pack(0, 987_654) + good[5:],
        "truncated body": good[:20],
        "shorter than the header": b"\x00\x00",
        "user_id not a UUID": not_a_uuid,
    }
    produce_raw(stack.settings, topic, [(k.encode(), v) for k, v in poison.items()])

    report = run_job(stack.settings, job_config(stack.settings, topic, keyspace,
                                                tmp_path / "checkpoint", tmp_path / "r.json"),
                     tmp_path / "run.log")
    assert report["rows_written"] == 600
    assert report["dead_letters"] == len(poison)
    assert sorted(report["schema_ids"]) == sorted({v1_id, evolved_id, 987_654})

    landed = {str(r.user_id): r for r in cassandra_rows(session, keyspace)}
    assert set(old_users) | set(new_users) <= set(landed)
    for user_id, sent in new_users.items():
        assert landed[user_id].last_name == sent["last_name"]

    dead = session.execute(f"SELECT * FROM {keyspace}.users_dead_letter WHERE topic = %s "
                           "AND kafka_partition IN (0, 1, 2)", (topic,))
    by_key = {bytes(r.raw_key).decode(): r for r in dead}
    assert set(by_key) == set(poison)
    assert "magic byte is 0x01" in by_key["wrong magic byte"].error
    assert "schema id 987654 is not in the schema registry" in by_key["unknown schema id"].error
    assert "does not decode" in by_key["truncated body"].error
    assert "shorter than the 5-byte" in by_key["shorter than the header"].error
    assert "not a UUID" in by_key["user_id not a UUID"].error
    for name, row in by_key.items():
        assert bytes(row.raw_value) == poison[name]
