"""The stream job against hostile input and disorder, on scratch topics and a scratch keyspace:
poison messages of every kind named in the hardening issue become dead letters while the good
messages beside them land; fuzzed bytes are all accounted for; the newest event of a user wins
whatever order events arrive in; an outage of the registry or Cassandra fails the run instead of
dead-lettering good data."""

from __future__ import annotations

import io
import json
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path

import requests
from fastavro import schemaless_writer

from include.provisioning import add_missing_columns
from include.record_contract import load_schema
from include.relay.avro import HEADER, encode, event_record, load_parsed_schema
from include.schema_registry import SchemaRegistryClient, load_schema_text
from local_stack.stream_harness import (
    cassandra_rows,
    job_config,
    produce_raw,
    produce_users,
    register_subject,
    run_job,
    start_job,
    synthetic_user,
)


def _zigzag(value: int) -> bytes:
    """An Avro long: zigzag, then base-128 varint."""
    number, out = (value << 1) ^ (value >> 63), bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def record_with(event_id: int, **changes) -> dict:
    payload = synthetic_user(random.Random(event_id), event_id)
    return {**event_record(event_id, payload, "h", datetime.now(UTC)), **changes}


def framed(schema_id: int, record: dict) -> bytes:
    """Encoded by fastavro straight, past the relay's check: what a foreign producer could send."""
    buffer = io.BytesIO()
    buffer.write(HEADER.pack(0, schema_id))
    schemaless_writer(buffer, load_parsed_schema(), record)
    return buffer.getvalue()


def _dead_letters(session, keyspace: str, topic: str) -> dict[str, object]:
    rows = session.execute(f"SELECT * FROM {keyspace}.users_dead_letter WHERE topic = %s AND "
                           "kafka_partition IN (0, 1, 2)", (topic,))
    return {bytes(r.raw_key).decode(): r for r in rows}


def _run(stack, topic: str, keyspace: str, tmp_path: Path, name: str,
         checkpoint: str | None = None, **overrides) -> dict:
    """Runs the job to its end on checkpoint `checkpoint` (default: a new one named `name`)."""
    config = job_config(stack.settings, topic, keyspace,
                        tmp_path / f"checkpoint-{checkpoint or name}", tmp_path / f"{name}.json",
                        **overrides)
    return run_job(stack.settings, config, tmp_path / f"{name}.log")


def test_every_poison_message_is_a_dead_letter_and_the_good_ones_land(stack, cassandra, tmp_path):
    keyspace, session = cassandra
    topic = f"stream-poison-{uuid.uuid4().hex[:8]}"
    before = produce_users(stack.settings, topic, 200, seed=41, first_event_id=1)
    v1 = register_subject(stack.settings, topic)
    foreign = SchemaRegistryClient(stack.settings.registry_url).register(
        f"{topic}-foreign-value", json.dumps({"type": "record", "name": "Foreign", "fields": [
            {"name": "user_id", "type": "int"}]}))
    json_schema = requests.post(
        f"{stack.settings.registry_url}/subjects/{topic}-json-value/versions",
        json={"schema": json.dumps({"type": "object", "properties": {"a": {"type": "string"}}}),
              "schemaType": "JSON"}, timeout=10,
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"}).json()["id"]
    good_body = framed(v1, record_with(900))[5:]
    poison = {
        "schema id 2^31": (HEADER.pack(0, 2**31) + good_body, "beyond the registry's range"),
        "schema id 2^32-1": (HEADER.pack(0, 2**32 - 1) + good_body,
                             "beyond the registry's range"),
        "declares a 2 GB string": (HEADER.pack(0, v1) + _zigzag(901) + _zigzag(2_000_000_000)
                                   + b"abc", "does not decode"),
        "NUL in a name": (framed(v1, record_with(902, first_name="Jo\x00hn")),
                          "forbidden character"),
        "name of 1001 characters": (framed(v1, record_with(903, last_name="x" * 1001)),
                                    "longer than 1000"),
        "latitude NaN": (framed(v1, record_with(904, latitude=float("nan"))), "finite"),
        "event_id 0": (framed(v1, record_with(0)), "'event_id' is outside"),
        "dob in 1850": (framed(v1, record_with(905, dob=datetime(1850, 1, 1, tzinfo=UTC))),
                        "years 1900..9999"),
        "a writer schema the reader cannot resolve": (HEADER.pack(0, foreign) + _zigzag(7),
                                                      f"does not decode with writer schema "
                                                      f"{foreign}"),
        "a JSON schema's id": (HEADER.pack(0, json_schema) + b"{}", "a JSON schema, not Avro"),
    }
    produce_raw(stack.settings, topic, [(k.encode(), v) for k, (v, _) in poison.items()])
    after = produce_users(stack.settings, topic, 50, seed=42, first_event_id=1000)

    report = _run(stack, topic, keyspace, tmp_path, "poison")
    assert report["rows_written"] == 250
    assert report["dead_letters"] == len(poison)
    landed = {str(r.user_id) for r in cassandra_rows(session, keyspace)}
    assert set(before) | set(after) <= landed
    dead = _dead_letters(session, keyspace, topic)
    assert set(dead) == set(poison)
    for name, (value, reason) in poison.items():
        assert reason in dead[name].error, (name, dead[name].error)
        assert bytes(dead[name].raw_value) == value
    assert dead["schema id 2^32-1"].schema_id is None  # beyond the column's int: in the error


def test_a_batch_of_only_unknown_schema_ids_is_dead_lettered_not_skipped(
        stack, cassandra, tmp_path):
    keyspace, session = cassandra
    topic = f"stream-ids-{uuid.uuid4().hex[:8]}"
    produce_users(stack.settings, topic, 1, seed=43)  # creates the topic and subject
    messages = {f"id {i}": HEADER.pack(0, i) + b"\x02" for i in (2**31, 2**32 - 1, 987_654_321)}
    produce_raw(stack.settings, topic, [(k.encode(), v) for k, v in messages.items()])
    report = _run(stack, topic, keyspace, tmp_path, "ids", max_offsets_per_trigger=1)
    assert report["messages"] == 4 and report["rows_written"] == 1
    assert report["dead_letters"] == 3
    assert set(_dead_letters(session, keyspace, topic)) == set(messages)


def _last_names(session, keyspace: str, user_ids) -> dict[str, tuple[int, str]]:
    return {str(r.user_id): (r.event_id, r.last_name) for r in cassandra_rows(session, keyspace)
            if str(r.user_id) in user_ids}


def _produce_events(stack, topic: str, users: list[dict], first_event_id: int, suffix: str,
                    keyed: bool = True) -> None:
    schema_id = register_subject(stack.settings, topic)
    messages = []
    for i, user in enumerate(users):
        record = event_record(first_event_id + i, {**user, "last_name": f"{suffix}{i}"}, "h",
                              datetime.now(UTC))
        key = user["user_id"] if keyed else uuid.uuid4().hex  # unkeyed: any partition
        messages.append((key.encode(), encode(schema_id, load_parsed_schema(), record)))
    produce_raw(stack.settings, topic, messages)


def test_the_newest_event_wins_across_batches_partitions_and_replays(stack, cassandra, tmp_path):
    keyspace, session = cassandra
    topic = f"stream-order-{uuid.uuid4().hex[:8]}"
    produce_users(stack.settings, topic, 1, seed=44)  # creates the topic and subject
    rng = random.Random(45)
    users = [synthetic_user(rng, i) for i in range(90)]
    ids = {u["user_id"] for u in users}
    # Newer events first; then older events at later offsets, some on other partitions.
    _produce_events(stack, topic, users, first_event_id=50_000, suffix="newer")
    _produce_events(stack, topic, users[:45], first_event_id=100, suffix="older")
    _produce_events(stack, topic, users[45:], first_event_id=100, suffix="older", keyed=False)

    report = _run(stack, topic, keyspace, tmp_path, "split", max_offsets_per_trigger=40)
    assert report["batches"] >= 5  # the older events arrive in later micro-batches
    landed = _last_names(session, keyspace, ids)
    assert len(landed) == 90
    assert all(event_id >= 50_000 and name.startswith("newer")
               for event_id, name in landed.values()), landed

    # A second run after more old events, then a replay of every offset from a new checkpoint.
    _produce_events(stack, topic, users, first_event_id=1_000, suffix="older")
    again = _run(stack, topic, keyspace, tmp_path, "again", checkpoint="split",
                 max_offsets_per_trigger=40)
    assert again["messages"] == 90
    replay = _run(stack, topic, keyspace, tmp_path, "replay")
    assert replay["messages"] == 1 + 90 * 3
    assert _last_names(session, keyspace, ids) == landed


def test_a_registry_outage_fails_the_run_and_dead_letters_nothing(stack, cassandra, tmp_path):
    keyspace, session = cassandra
    topic = f"stream-outage-{uuid.uuid4().hex[:8]}"
    produce_users(stack.settings, topic, 20, seed=46)
    config = job_config(stack.settings, topic, keyspace, tmp_path / "checkpoint",
                        tmp_path / "r.json", registry_url="http://127.0.0.1:9/apis/ccompat/v7")
    _assert_fails(stack, config, tmp_path / "registry.log", "schema registry")
    assert _dead_letters(session, keyspace, topic) == {}


def test_a_cassandra_outage_fails_the_run(stack, cassandra, tmp_path):
    keyspace, _ = cassandra
    topic = f"stream-outage-{uuid.uuid4().hex[:8]}"
    produce_users(stack.settings, topic, 20, seed=47)
    config = job_config(stack.settings, topic, keyspace, tmp_path / "checkpoint",
                        tmp_path / "r.json", cassandra_port=9)
    _assert_fails(stack, config, tmp_path / "cassandra.log", "127.0.0.1:9")


def _assert_fails(stack, config, log_path: Path, needle: str) -> None:
    process = start_job(stack.settings, config, log_path)
    assert process.wait(600) != 0, "the job should fail on an outage"
    assert needle in log_path.read_text()


def test_fuzzed_messages_are_dead_letters_and_every_good_message_lands(
        stack, cassandra, tmp_path):
    keyspace, session = cassandra
    topic = f"stream-fuzz-{uuid.uuid4().hex[:8]}"
    good = produce_users(stack.settings, topic, 300, seed=48)
    v1 = register_subject(stack.settings, topic)
    rng = random.Random(49)
    bad: dict[str, bytes] = {}
    for i in range(150):
        valid = framed(v1, record_with(10_000 + i))
        kind = i % 5
        if kind == 0:  # random bytes, never a 0 magic byte
            value = bytes([rng.randrange(1, 256)]) + rng.randbytes(rng.randrange(0, 300))
        elif kind == 1:  # a valid frame cut short
            value = valid[:rng.randrange(0, len(valid) - 1)]
        elif kind == 2:  # a valid body behind an id no registry has
            value = HEADER.pack(0, rng.randrange(2**20, 2**32)) + valid[5:]
        elif kind == 3:  # a valid frame whose second field declares a huge length
            value = valid[:5] + _zigzag(10_000 + i) + _zigzag(rng.randrange(2**21, 2**40))
        else:  # a valid frame with random bytes past its header and event id
            value = valid[:8] + rng.randbytes(rng.randrange(1, 40))
        bad[f"fuzz-{i}"] = value
    produce_raw(stack.settings, topic, [(k.encode(), v) for k, v in bad.items()])
    more_good = produce_users(stack.settings, topic, 100, seed=50, first_event_id=20_000)

    report = _run(stack, topic, keyspace, tmp_path, "fuzz")
    landed = {str(r.user_id) for r in cassandra_rows(session, keyspace)}
    assert set(good) | set(more_good) <= landed, "a good message did not land"
    assert set(_dead_letters(session, keyspace, topic)) == set(bad), "a bad message slipped by"
    assert report["messages"] == 400 + len(bad)
    assert (report["rows_written"], report["dead_letters"]) == (400, len(bad))


def test_a_new_optional_field_adds_its_column_and_both_versions_land(stack, cassandra, tmp_path):
    keyspace, session = cassandra
    topic = f"stream-evolve-{uuid.uuid4().hex[:8]}"
    evolved = load_schema()
    evolved["fields"].append({"name": "middle_name", "type": ["null", "string"],
                              "default": None})
    evolved_path = tmp_path / "user_created.avsc"
    evolved_path.write_text(json.dumps(evolved))
    old_users = produce_users(stack.settings, topic, 100, seed=51)

    # The evolved reader before provisioning added the column: dead letters, not a failed run.
    early = _run(stack, topic, keyspace, tmp_path, "early", reader_schema=evolved_path)
    assert early["rows_written"] == 0 and early["dead_letters"] == 100
    assert "lacks column(s) middle_name" in next(iter(
        _dead_letters(session, keyspace, topic).values())).error

    assert add_missing_columns(session, keyspace, evolved) == [
        f"ALTER TABLE {keyspace}.users ADD middle_name text"]
    assert add_missing_columns(session, keyspace, evolved) == []  # idempotent
    evolved_id = register_subject(stack.settings, topic, json.dumps(evolved))
    assert evolved_id != register_subject(stack.settings, topic, load_schema_text())
    rng = random.Random(52)
    new_users = {}
    messages = []
    for i in range(100):
        user = {**synthetic_user(rng, 5_000 + i), "middle_name": f"M{i}"}
        new_users[user["user_id"]] = user
        record = event_record(5_000 + i, user, "h", datetime.now(UTC))
        messages.append((user["user_id"].encode(),
                         encode(evolved_id, load_parsed_schema(json.dumps(evolved)), record)))
    produce_raw(stack.settings, topic, messages)
    later = produce_users(stack.settings, topic, 100, seed=53, first_event_id=9_000)

    report = _run(stack, topic, keyspace, tmp_path, "late", checkpoint="early",
                  reader_schema=evolved_path)
    assert report["rows_written"] == 200 and report["dead_letters"] == 0
    landed = {str(r.user_id): r for r in cassandra_rows(session, keyspace)}
    assert all(landed[u].middle_name == new_users[u]["middle_name"] for u in new_users)
    assert all(landed[u].middle_name is None for u in later)
    assert not set(old_users) & set(landed)  # dead-lettered before the column existed
