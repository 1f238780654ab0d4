"""Confluent wire format and the event record built from an outbox payload."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from include.relay.avro import (
    FramingError,
    decode,
    encode,
    event_record,
    load_parsed_schema,
    split_frame,
)
from include.schema_registry import USER_CREATED_SCHEMA

PAYLOAD = {
    "user_id": "b7ee0a96-eba6-4482-a197-daa3c333e8d9", "gender": "male", "title": "Mr",
    "first_name": "Çağrı", "last_name": "Jordan", "email": "miguel.jordan@example.com",
    "username": "organickoala866", "phone": "061-211-8585", "cell": "081-668-3525",
    "street_number": 9318, "street_name": "Albert Road", "city": "Mullingar", "state": "Louth",
    "country": "Ireland", "postcode": "48246", "latitude": 0.209, "longitude": -6.7355,
    "timezone_offset": "+9:30", "timezone_description": "Adelaide, Darwin",
    "dob": "1982-10-25T08:18:55.17+00:00", "age": 42,
    "registered_at": "2015-08-16T20:54:47.856+00:00", "nat": "IE", "id_name": "PPS",
    "id_value": None, "picture_large": "l", "picture_medium": "m", "picture_thumbnail": "t",
}


def test_round_trip_in_the_wire_format():
    schema = load_parsed_schema()
    created = datetime(2026, 11, 21, 8, 0, 0, 123000, tzinfo=UTC)
    message = encode(42, schema, event_record(7, PAYLOAD, "abc", created))
    assert message[0] == 0 and int.from_bytes(message[1:5], "big") == 42
    decoded = decode(message, schema)
    assert decoded["event_id"] == 7 and decoded["first_name"] == "Çağrı"
    assert decoded["dob"] == datetime(1982, 10, 25, 8, 18, 55, 170000, tzinfo=UTC)
    assert decoded["event_time"] == created
    assert decoded["id_value"] is None and decoded["postcode"] == "48246"


def test_an_evolved_reader_decodes_old_records():
    old = load_parsed_schema()
    evolved_json = json.loads(USER_CREATED_SCHEMA.read_text())
    evolved_json["fields"].append({"name": "nickname", "type": ["null", "string"],
                                   "default": None})
    evolved = load_parsed_schema(json.dumps(evolved_json))
    message = encode(1, old, event_record(1, PAYLOAD, "h", datetime.now(UTC)))
    assert decode(message, old, evolved)["nickname"] is None


@pytest.mark.parametrize(("message", "reason"), [
    (b"\x01\x00\x00\x00\x01abc", "magic byte is 1"),
    (b"\x00\x00", "shorter than the 5-byte header"),
])
def test_bad_frames_are_named(message, reason):
    with pytest.raises(FramingError, match=reason):
        split_frame(message)
