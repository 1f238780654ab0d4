"""The relay's encoder: a claimed outbox row becomes the framed Avro message of its event, and a
row it cannot encode becomes a failure with fastavro's reason while the rest of the batch goes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from include.relay.avro import decode, encode, event_record, load_parsed_schema
from include.relay.encoding import EventEncoder
from local_stack.stream_harness import synthetic_user

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
USER_ID = "5f0c8a0e-3c1d-4a8e-9a63-0f4c1e2d3b4a"


def claimed_row(event_id: int, payload: dict, content_hash: str, created: datetime) -> tuple:
    """A row as relay/claim_batch.sql returns it: text and JSON as UTF-8 bytes, event_time in
    epoch milliseconds (floored)."""
    return (event_id, payload["user_id"].encode(), content_hash.encode(), orjson.dumps(payload),
            (created - EPOCH) // timedelta(milliseconds=1))


def test_rows_become_framed_messages_keyed_by_user():
    schema = load_parsed_schema()
    rng = random.Random(3)
    created = datetime(2026, 11, 21, 9, 30, 15, 123456, tzinfo=UTC)
    rows = [claimed_row((i + 1) * 7919, synthetic_user(rng, i), f"hash-{i}", created)
            for i in range(200)]
    batch = EventEncoder(42, schema).encode_batch(rows)
    assert batch.failures == [] and batch.event_ids() == [row[0] for row in rows]
    for (event_id, key, value), row in zip(batch.messages, rows, strict=True):
        payload = orjson.loads(row[3])
        assert key == row[1] and value == encode(42, schema, event_record(
            event_id, payload, row[2].decode(), row[4]))
        decoded = decode(value, schema)
        assert (decoded["event_id"], str(decoded["user_id"])) == (event_id, payload["user_id"])


@pytest.mark.parametrize("field, value", [("postcode", 1234), ("age", "12"), ("age", 12.5),
                                          ("latitude", "1.5"), ("dob", "yesterday"),
                                          ("first_name", ["a"])])
def test_a_value_of_the_wrong_type_is_a_failure_with_its_reason(field, value):
    schema = load_parsed_schema()
    good = claimed_row(1, {"user_id": USER_ID}, "h", datetime.now(UTC))
    bad = claimed_row(2, {"user_id": USER_ID, field: value}, "h", datetime.now(UTC))
    batch = EventEncoder(42, schema).encode_batch([bad, good])
    assert batch.event_ids() == [1]
    ((failed, reason),) = batch.failures
    assert failed == 2 and reason.startswith("cannot encode: ")


def test_a_payload_that_is_not_a_json_object_is_a_failure_with_its_reason():
    encoder = EventEncoder(42, load_parsed_schema())
    good = claimed_row(1, {"user_id": USER_ID}, "h", datetime.now(UTC))
    rows = [good, (2, USER_ID.encode(), b"h", b"[1, 2]", 0), (3, USER_ID.encode(), b"h", b"{", 0)]
    batch = encoder.encode_batch(rows)
    assert [m[0] for m in batch.messages] == [1]
    reasons = dict(batch.failures)
    assert "not an object" in reasons[2] and "JSONDecodeError" in reasons[3]
