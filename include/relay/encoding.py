"""From claimed outbox rows to framed Avro messages.

A claimed row is (id, user_id, content_hash, payload, event_time): text and the JSON payload as
the UTF-8 bytes PostgreSQL sent, event_time in epoch milliseconds. The encoder compiled from the
.avsc (`fast_avro.compile_event_encoder`) turns most rows into messages with one JSON parse and
no intermediate record. A row it cannot encode is judged by fastavro, the reference encoder: its
bytes are used if it accepts the row, and its reason is recorded if it refuses it. A schema the
compiler does not cover is encoded by fastavro throughout.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from typing import Any

import orjson

from include.relay.avro import HEADER, MAGIC_BYTE, encode, event_record
from include.relay.fast_avro import compile_event_encoder, field_kinds

log = logging.getLogger(__name__)

MAX_REASON = 1000
# What a JSON value of the wrong type raises in the compiled encoder.
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
        self._header = HEADER.pack(MAGIC_BYTE, schema_id)
        try:
            self._compiled = compile_event_encoder(field_kinds(parsed_schema))
        except ValueError as exc:
            log.info("Avro encoder: fastavro (%s)", exc)
            self._compiled = None

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def encode_batch(self, rows: list[tuple]) -> EncodedBatch:
        encoded = EncodedBatch()
        add, compiled, header = encoded.messages.append, self._compiled, self._header
        for row in rows:
            if compiled is not None:
                try:
                    add((row[0], row[1], compiled(header, *row)))
                    continue
                except _WRONG_VALUE:
                    pass  # fastavro decides below, and names the problem if there is one
            try:
                add((row[0], row[1], self.with_fastavro(row)))
            except (*_WRONG_VALUE, orjson.JSONDecodeError) as exc:
                encoded.failures.append(
                    (row[0], f"cannot encode: {type(exc).__name__}: {exc}"[:MAX_REASON]))
        return encoded

    def with_fastavro(self, row: tuple) -> bytes:
        event_id, user_id, content_hash, payload, event_time = row
        payload = orjson.loads(payload)
        if not isinstance(payload, dict):
            raise ValueError(f"the payload is a JSON {type(payload).__name__}, not an object")
        return encode(self._schema_id, self._schema, event_record(
            event_id, {**payload, "user_id": user_id.decode()}, content_hash.decode(),
            event_time))
