"""The compiled event encoder writes exactly fastavro's bytes for the record's schema, and a row it
cannot encode is judged by fastavro."""

from __future__ import annotations

import json
import random
import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from include.relay.avro import HEADER, encode, event_record, load_parsed_schema
from include.relay.encoding import EventEncoder
from include.relay.fast_avro import compile_event_encoder, field_kinds
from include.schema_registry import USER_CREATED_SCHEMA
from local_stack.stream_harness import synthetic_user

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INDIA = timezone(timedelta(hours=5, minutes=30))  # offsets other than UTC parse too
USER_ID = "5f0c8a0e-3c1d-4a8e-9a63-0f4c1e2d3b4a"


def claimed_row(event_id: int, payload: dict, content_hash: str, created: datetime) -> tuple:
    """A row as relay/claim_batch.sql returns it: text and JSON as UTF-8 bytes, event_time in
    epoch milliseconds (floored)."""
    return (event_id, payload["user_id"].encode(), content_hash.encode(), orjson.dumps(payload),
            (created - EPOCH) // timedelta(milliseconds=1))


def reference(schema, row: tuple) -> bytes:
    event_id, _, content_hash, payload, event_time = row
    return encode(42, schema, event_record(event_id, orjson.loads(payload), content_hash.decode(),
                                           event_time))


def test_compiled_encoder_matches_fastavro_byte_for_byte():
    schema = load_parsed_schema()
    fast = compile_event_encoder(field_kinds(json.loads(USER_CREATED_SCHEMA.read_text())))
    rng = random.Random(3)
    created = datetime(2026, 11, 21, 9, 30, 15, 123456, tzinfo=UTC)
    for i in range(2000):
        row = claimed_row(i * 7919, synthetic_user(rng, i), f"hash-{i}", created)
        assert fast(HEADER.pack(0, 42), *row) == reference(schema, row)


@pytest.mark.parametrize("moment", [
    datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC),  # floor, not round, before 1970
    datetime(1900, 2, 28, 1, 2, 3, 4, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2262, 4, 11, 23, 47, 16, 854_775, tzinfo=UTC),
])
def test_timestamps_and_extreme_numbers_match_fastavro(moment):
    schema = load_parsed_schema()
    fast = compile_event_encoder(field_kinds(schema))
    payload = {"user_id": USER_ID, "street_number": -(2**31), "age": 0, "latitude": -0.0,
               "postcode": "1234", "first_name": "é" * 5000, "dob": moment.isoformat(),
               "registered_at": moment.astimezone(INDIA).isoformat()}
    row = claimed_row(2**62, payload, "h" * 200, moment)
    assert fast(HEADER.pack(0, 42), *row) == reference(schema, row)


@pytest.mark.parametrize("field, value", [("postcode", 1234), ("age", "12"), ("age", 12.5),
                                          ("latitude", "1.5"), ("dob", "2020-01-01T00:00:00"),
                                          ("dob", 1577836800000), ("first_name", ["a"])])
def test_a_value_of_the_wrong_type_is_left_to_fastavro(field, value):
    schema = load_parsed_schema()
    fast = compile_event_encoder(field_kinds(schema))
    row = claimed_row(1, {"user_id": USER_ID, field: value}, "h", datetime.now(UTC))
    with pytest.raises((ValueError, TypeError, AttributeError, struct.error)):
        fast(HEADER.pack(0, 42), *row)
    encoder = EventEncoder(42, schema)
    try:
        accepted = reference(schema, row)
    except (ValueError, TypeError) as refusal:  # fastavro's reason is the event's failure
        batch = encoder.encode_batch([row])
        assert batch.messages == []
        assert batch.failures == [(1, f"cannot encode: {type(refusal).__name__}: {refusal}")]
    else:  # fastavro accepts it (e.g. epoch milliseconds for a timestamp): its bytes are sent
        assert encoder.encode_batch([row]).messages == [(1, USER_ID.encode(), accepted)]


def test_a_payload_that_is_not_a_json_object_is_a_failure_with_its_reason():
    encoder = EventEncoder(42, load_parsed_schema())
    good = claimed_row(1, {"user_id": USER_ID}, "h", datetime.now(UTC))
    rows = [good, (2, USER_ID.encode(), b"h", b"[1, 2]", 0), (3, USER_ID.encode(), b"h", b"{", 0)]
    batch = encoder.encode_batch(rows)
    assert [m[0] for m in batch.messages] == [1]
    reasons = dict(batch.failures)
    assert "not an object" in reasons[2] and "JSONDecodeError" in reasons[3]


def test_unknown_types_and_nullable_outbox_fields_are_not_compiled():
    with pytest.raises(ValueError, match="not compiled"):
        field_kinds({"fields": [{"name": "f", "type": {"type": "fixed", "size": 2}}]})
    with pytest.raises(ValueError, match="only \\[null, T\\] unions"):
        field_kinds({"fields": [{"name": "f", "type": ["string", "long"]}]})
    with pytest.raises(ValueError, match="non-null long or string"):
        compile_event_encoder(field_kinds({"fields": [
            {"name": "user_id", "type": ["null", "string"]}]}))


def test_a_schema_the_compiler_does_not_cover_is_encoded_by_fastavro():
    evolved = json.loads(USER_CREATED_SCHEMA.read_text())
    evolved["fields"].append({"name": "tags", "type": {"type": "array", "items": "string"},
                              "default": []})
    schema = load_parsed_schema(json.dumps(evolved))
    encoder = EventEncoder(42, schema)
    assert not encoder.compiled and EventEncoder(42, load_parsed_schema()).compiled
    payload = {**synthetic_user(random.Random(1), 1), "tags": ["a"]}
    row = claimed_row(9, payload, "h", datetime.now(UTC))
    assert encoder.encode_batch([row]).messages == [(9, payload["user_id"].encode(),
                                                     reference(schema, row))]


def test_booleans_and_required_scalars_match_fastavro():
    schema = load_parsed_schema(json.dumps({"type": "record", "name": "R", "fields": [
        {"name": "event_id", "type": "long"}, {"name": "user_id", "type": "string"},
        {"name": "flag", "type": "boolean"}, {"name": "maybe", "type": ["null", "boolean"]},
        {"name": "n", "type": "long"}, {"name": "x", "type": "double"},
        {"name": "s", "type": "string"}, {"name": "big", "type": ["null", "long"]}]}))
    fast = compile_event_encoder(field_kinds(schema))
    for payload in ({"flag": True, "maybe": False, "n": -1, "x": 2.5, "s": "", "big": 2**40},
                    {"flag": False, "maybe": None, "n": 4096, "x": -0.0, "s": "ü" * 3000,
                     "big": None}):
        user_id = str(uuid.uuid4())
        expected = encode(0, schema, {**payload, "event_id": 5, "user_id": user_id})
        assert fast(b"\0\0\0\0\0", 5, user_id.encode(), b"", orjson.dumps(payload), 0) == expected
    with pytest.raises(ValueError, match="required field 'flag'"):
        fast(b"", 5, b"u", b"", b"{}", 0)
