"""From claimed outbox rows to framed Avro messages, with fastavro.

A claimed row is (id, user_id, content_hash, payload, event_time): text and the JSON payload as
the UTF-8 bytes PostgreSQL sent, event_time in epoch milliseconds. A row that cannot be encoded
becomes a failure with its reason; the rest of the batch is encoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import orjson

from include.relay.avro import encode, event_record

MAX_REASON = 1000
# What fastavro raises for a value of the wrong type, and orjson for a payload that is not JSON.
_WRONG_VALUE = (ValueError, TypeError, AttributeError, KeyError, struct.error)


@dataclass
class EncodedBatch:
    messages: list[tuple[int, bytes, bytes]] = field(default_factory=list)  # (id, key, value)
    failures: list[tuple[int, str]] = field(default_factory=list)  # (id, reason)

    def event_ids(self) -> list[int]:
        return [event_id for event_id, _, _ in self.messages]


class EventEncoder:
    def __init__(self, schema_id: int, parsed_schema: dict[str, Any]) -> None:
        self._schema_id, self._schema = schema_id, parsed_schema

    def encode_batch(self, rows: list[tuple]) -> EncodedBatch:
        encoded = EncodedBatch()
        for row in rows:
            try:
                encoded.messages.append((row[0], row[1], self.encode(row)))
            except (*_WRONG_VALUE, orjson.JSONDecodeError) as exc:
                encoded.failures.append(
                    (row[0], f"cannot encode: {type(exc).__name__}: {exc}"[:MAX_REASON]))
        return encoded

    def encode(self, row: tuple) -> bytes:
        event_id, user_id, content_hash, payload, event_time = row
        payload = orjson.loads(payload)
        if not isinstance(payload, dict):
            raise ValueError(f"the payload is a JSON {type(payload).__name__}, not an object")
        return encode(self._schema_id, self._schema, event_record(
            event_id, {**payload, "user_id": user_id.decode()}, content_hash.decode(),
            event_time))
