"""The compiled encoder writes exactly fastavro's bytes for the record's schema."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest

from include.relay.avro import HEADER, encode, event_record, load_parsed_schema
from include.relay.fast_avro import compile_encoder
from include.schema_registry import USER_CREATED_SCHEMA
from tests.stream_support import synthetic_user


def test_compiled_encoder_matches_fastavro_byte_for_byte():
    schema_json = json.loads(USER_CREATED_SCHEMA.read_text())
    fast = compile_encoder(schema_json)
    parsed = load_parsed_schema()
    rng = random.Random(3)
    created = datetime(2026, 11, 21, 9, 30, 15, 123456, tzinfo=UTC)
    for i in range(2000):
        record = event_record(i * 7919, synthetic_user(rng, i), f"hash-{i}", created)
        assert fast(HEADER.pack(0, 42), record) == encode(42, parsed, record)


def test_compiled_encoder_refuses_a_missing_required_field_and_unknown_types():
    fast = compile_encoder(json.loads(USER_CREATED_SCHEMA.read_text()))
    with pytest.raises(ValueError, match="required field 'user_id'"):
        fast(b"", {"event_id": 1})
    with pytest.raises(ValueError, match="not compiled"):
        compile_encoder({"fields": [{"name": "f", "type": {"type": "fixed", "size": 2}}]})


@pytest.mark.parametrize("moment", [
    datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC),  # floor, not round, before 1970
    datetime(1900, 2, 28, 1, 2, 3, 4, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2262, 4, 11, 23, 47, 16, 854_775, tzinfo=UTC),
])
def test_timestamps_and_extreme_numbers_match_fastavro(moment):
    schema = load_parsed_schema()
    fast = compile_encoder(schema)
    record = event_record(2**62, {"user_id": "5f0c8a0e-3c1d-4a8e-9a63-0f4c1e2d3b4a",
                                  "street_number": -(2**31), "age": 0, "latitude": -0.0,
                                  "postcode": "1234", "first_name": "é" * 5000},
                          "h" * 200, moment)
    record["dob"] = moment
    assert fast(HEADER.pack(0, 7), record) == encode(7, schema, record)


@pytest.mark.parametrize("field, value", [("postcode", 1234), ("age", "12"), ("age", 12.5),
                                          ("latitude", "1.5"), ("user_id", None)])
def test_values_fastavro_refuses_are_refused_too(field, value):
    schema = load_parsed_schema()
    record = event_record(1, {"user_id": "5f0c8a0e-3c1d-4a8e-9a63-0f4c1e2d3b4a"}, "h",
                          datetime(2026, 1, 1, tzinfo=UTC))
    record[field] = value
    with pytest.raises((ValueError, TypeError)):
        encode(7, schema, record)
    with pytest.raises(ValueError):
        compile_encoder(schema)(HEADER.pack(0, 7), record)
