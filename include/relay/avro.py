"""Avro in the Confluent wire format: magic byte 0, the schema id as 4 big-endian bytes, then the
schemaless Avro body. The record's shape is `include/schemas/user_created.avsc`, nothing else."""

from __future__ import annotations

import io
import json
import struct
from datetime import datetime
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from include.schema_registry import USER_CREATED_SCHEMA

MAGIC_BYTE = 0
HEADER = struct.Struct(">bI")


class FramingError(ValueError):
    """Bytes that are not a Confluent-framed Avro message."""


def load_parsed_schema(text: str | None = None) -> dict[str, Any]:
    return parse_schema(json.loads(text if text is not None else USER_CREATED_SCHEMA.read_text()))


def encode(schema_id: int, parsed_schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    buffer.write(HEADER.pack(MAGIC_BYTE, schema_id))
    schemaless_writer(buffer, parsed_schema, record)
    return buffer.getvalue()


def split_frame(message: bytes) -> tuple[int, bytes]:
    if len(message) < HEADER.size:
        raise FramingError(f"message of {len(message)} bytes is shorter than the 5-byte header")
    magic, schema_id = HEADER.unpack_from(message)
    if magic != MAGIC_BYTE:
        raise FramingError(f"magic byte is {magic}, expected {MAGIC_BYTE}")
    return schema_id, message[HEADER.size:]


def decode(message: bytes, writer_schema: dict[str, Any],
           reader_schema: dict[str, Any] | None = None) -> dict[str, Any]:
    _, body = split_frame(message)
    return schemaless_reader(io.BytesIO(body), writer_schema, reader_schema)


def _timestamp(field: str, value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp on field {field}") from exc


def event_record(event_id: int, payload: dict[str, Any], content_hash: str,
                 created_at: datetime | int) -> dict[str, Any]:
    """The Avro record of one outbox event (payload = the staged user as JSON; created_at as a
    datetime or in epoch milliseconds)."""
    record = dict(payload)
    record["event_id"] = event_id
    record["content_hash"] = content_hash
    record["user_id"] = str(record["user_id"])
    record["dob"] = _timestamp("dob", record.get("dob"))
    record["registered_at"] = _timestamp("registered_at", record.get("registered_at"))
    record["event_time"] = created_at
    return record
