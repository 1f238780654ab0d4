"""A schema-compiled Avro encoder for the relay's hot path.

fastavro resolves every union branch per value (~40-50 µs per 30-field record here), after the
payload was parsed into a dict and turned into a record. This module generates one straight-line
Python expression from the .avsc that goes from a claimed outbox row (the outbox's own fields as
PostgreSQL typed them, the staged user as JSON bytes) to the framed message in one pass. It covers
null unions of string/int/long/double/boolean, uuid strings and timestamp-millis; its output is
byte-identical to fastavro's (tests/unit/test_fast_avro.py checks it on thousands of records). A
schema it cannot compile raises ValueError and the relay encodes with fastavro; a value of the
wrong type raises, and the relay lets fastavro judge that event (`include/relay/encoding.py`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

_SMALL = 4096  # zig-zag varints of 0.._SMALL-1 come from a table: string lengths, small ints
KINDS = ("string", "int", "long", "double", "boolean", "timestamp-millis")


@dataclass(frozen=True)
class FieldKind:
    name: str
    kind: str  # one of KINDS
    nullable: bool  # a ["null", T] union


def _varint_of_width(width: int) -> Callable[[int], bytes]:
    """bytes((...)) of a fixed number of 7-bit groups, without a Python loop per value."""
    groups = [f"n >> {7 * i} & 0x7F | 0x80" for i in range(width - 1)] + [f"n >> {7 * (width - 1)}"]
    return eval(f"lambda n: bytes(({', '.join(groups)},))")


_BY_WIDTH = [_varint_of_width(w) for w in range(1, 11)]


def varint(n: int) -> bytes:
    """Avro long: zig-zag, then little-endian base-128."""
    n = (n << 1) ^ (n >> 63)
    return _BY_WIDTH[(n.bit_length() - 1) // 7 if n else 0](n)


_VARINT = [varint(i) for i in range(_SMALL)]


def _kind(avro_type: Any, field: str) -> str:
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        if logical == "timestamp-millis" and avro_type["type"] == "long":
            return "timestamp-millis"
        if logical == "uuid" and avro_type["type"] == "string":
            return "string"
        return _kind(avro_type["type"], field)
    if isinstance(avro_type, str) and avro_type in KINDS:
        return avro_type
    raise ValueError(f"field {field}: type {avro_type!r} is not compiled")


def field_kinds(schema: dict[str, Any]) -> list[FieldKind]:
    """The record's fields in order, or ValueError naming the first one this module cannot
    compile."""
    kinds = []
    for field in schema["fields"]:
        name, avro_type = field["name"], field["type"]
        nullable = isinstance(avro_type, list)
        if nullable and (len(avro_type) != 2 or avro_type[0] != "null"):
            raise ValueError(f"field {name}: only [null, T] unions are compiled")
        kinds.append(FieldKind(name, _kind(avro_type[1] if nullable else avro_type, name),
                               nullable))
    return kinds


# Fields the outbox row supplies (relay/claim_batch.sql); they are the encoder's arguments.
OUTBOX_FIELDS = ("event_id", "user_id", "content_hash", "event_time")


def _length_prefixed(data: str, measured: str, table: str, branch: str) -> str:
    """Avro string/bytes: the length as a varint (from the table when short), then the bytes."""
    return (f"({table}[n] + {data} if (n := len({measured})) < SMALL "
            f"else {branch}varint(n) + {data})")


def _long(value: str, table: str, branch: str, guard: str = "") -> str:
    return f"({table}[{value}] if {guard}0 <= {value} < SMALL else {branch}varint({value}))"


def _outbox_expression(field: FieldKind) -> str:
    """A field the outbox row supplies, typed by PostgreSQL and never null."""
    v = field.name
    if not field.nullable and field.kind == "string":
        return _length_prefixed(v, v, "VARINT", "")
    if not field.nullable and field.kind in ("int", "long", "timestamp-millis"):
        return _long(v, "VARINT", "")
    raise ValueError(f"field {v}: the outbox supplies it as a non-null long or string")


def _payload_expression(kind: str, nullable: bool) -> str:
    """The Avro bytes of a payload value x (a JSON value, not null), union branch included. A
    JSON value of the wrong type fails here (AttributeError, TypeError, struct.error) or in
    `millis`; the caller then lets fastavro judge the event."""
    table, branch = ("NULLABLE_VARINT", "BRANCH + ") if nullable else ("VARINT", "")
    if kind == "string":
        return _length_prefixed("d", "d := x.encode()", table, branch)
    if kind == "double":
        return f"{branch}double(x)"
    if kind == "boolean":
        return f"{branch}(TRUE if x is True else FALSE if x is False else not_a_boolean(x))"
    if kind == "timestamp-millis":
        return f"{branch}varint(millis(x))"
    return _long("x", table, branch, guard="x.__class__ is int and ")


def compile_event_encoder(kinds: Sequence[FieldKind]) -> Callable[..., bytes]:
    """encode(header, event_id, user_id, content_hash, payload, event_time) -> the framed message.

    The four outbox fields come as PostgreSQL typed them (text as UTF-8 bytes, event_time in
    epoch milliseconds); every other field is read from the payload, the JSON text (bytes) of
    the staged user, whose timestamps are ISO 8601 strings with an offset.
    """
    namespace: dict[str, Any] = {
        "VARINT": _VARINT, "NULLABLE_VARINT": [b"\x02" + v for v in _VARINT], "SMALL": _SMALL,
        "BRANCH": b"\x02", "NULL": b"\x00", "TRUE": b"\x01", "FALSE": b"\x00",
        "varint": varint, "double": struct.Struct("<d").pack, "millis": _millis,
        "not_a_boolean": _not_a_boolean, "missing": _missing, "loads": orjson.loads,
    }
    parts = []
    for field in kinds:
        if field.name in OUTBOX_FIELDS:
            parts.append(_outbox_expression(field))
            continue
        value = _payload_expression(field.kind, field.nullable)
        parts.append(f"(NULL if (x := get({field.name!r})) is None else {value})" if field.nullable
                     else f"({value} if (x := get({field.name!r})) is not None "
                          f"else missing({field.name!r}))")
    source = ("def encode(header, event_id, user_id, content_hash, payload, event_time):\n"
              "    get = loads(payload).get\n"
              f"    return b''.join((header, {', '.join(parts)}))")
    exec(compile(source, "<avro-event-encoder>", "exec"), namespace)
    return namespace["encode"]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def _millis(iso: str) -> int:
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {iso!r} has no UTC offset")
    return (moment - _EPOCH) // _ONE_MS  # floor, as fastavro truncates


def _not_a_boolean(value: Any) -> bytes:
    raise ValueError(f"{value!r} is not a boolean")


def _missing(field: str) -> bytes:
    raise ValueError(f"required field {field!r} is missing")
