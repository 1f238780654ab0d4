"""From claimed outbox rows to framed Avro messages, with fastavro.

A claimed row is (id, user_id, content_hash, payload, event_time): text and the JSON payload as
the UTF-8 bytes PostgreSQL sent, event_time in epoch milliseconds. A row that breaks the record
contract, cannot be encoded or would be too large a message becomes a failure with its reason;
the rest of the batch is encoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import orjson

from include.record_contract import USER_CONTRACT, ContractViolation, RecordContract
from include.relay.avro import encode, event_record

MAX_REASON = 1000
# A record's framing in a Kafka record batch (length, attributes, deltas, header count), rounded
# up: a message this much under the limit still fits.
RECORD_OVERHEAD_BYTES = 100
# What fastavro raises for a value of the wrong type, and orjson for a payload that is not JSON.
_WRONG_VALUE = (ValueError, TypeError, AttributeError, KeyError, struct.error)


@dataclass
class EncodedBatch:
    messages: list[tuple[int, bytes, bytes]] = field(default_factory=list)  # (id, key, value)
    failures: list[tuple[int, str]] = field(default_factory=list)  # (id, reason)

    def event_ids(self) -> list[int]:
        return [event_id for event_id, _, _ in self.messages]


class EventEncoder:
    """Encodes outbox rows as framed Avro; a row that breaks the record contract, or whose
    message would exceed the broker's limit, becomes a failure with its reason."""

    def __init__(self, schema_id: int, parsed_schema: dict[str, Any],
                 contract: RecordContract = USER_CONTRACT) -> None:
        self._schema_id, self._schema, self._contract = schema_id, parsed_schema, contract

    def encode_batch(self, rows: list[tuple], max_message_bytes: int | None = None) -> EncodedBatch:
        encoded = EncodedBatch()
        for row in rows:
            try:
                value = self.encode(row)
            except (*_WRONG_VALUE, orjson.JSONDecodeError) as exc:
                encoded.failures.append(
                    (row[0], f"cannot encode: {type(exc).__name__}: {exc}"[:MAX_REASON]))
                continue
            size = len(row[1]) + len(value) + RECORD_OVERHEAD_BYTES
            if max_message_bytes is not None and size > max_message_bytes:
                encoded.failures.append((row[0], f"the message of about {size} bytes exceeds "
                                                 f"the broker's limit of {max_message_bytes}"))
                continue
            encoded.messages.append((row[0], row[1], value))
        return encoded

    def encode(self, row: tuple) -> bytes:
        event_id, user_id, content_hash, payload, event_time = row
        payload = orjson.loads(payload)
        if not isinstance(payload, dict):
            raise ValueError(f"the payload is a JSON {type(payload).__name__}, not an object")
        record = event_record(event_id, {**payload, "user_id": user_id.decode()},
                              content_hash.decode(), event_time)
        if problem := self._contract.violation(record):
            raise ContractViolation(f"breaks the record contract: {problem}")
        return encode(self._schema_id, self._schema, record)
