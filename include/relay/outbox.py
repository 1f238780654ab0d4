"""The transactional-outbox relay: PostgreSQL `staging.user_events` -> Kafka `users_created`.

Each batch is claimed with `FOR UPDATE SKIP LOCKED` (so two relays never send the same event) in a
transaction that stays open until the broker has acknowledged every message of the batch. Only
then are the events marked published, in that same transaction. Any delivery failure rolls the
transaction back: the events stay unpublished and the task fails with the broker's error. An
event that cannot be encoded is marked failed with its reason and does not block the queue.

Batches go one after another: batch N+1 is claimed only after batch N committed, so a failed
commit never lets a later event overtake an earlier one.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from psycopg.types.string import ByteaBinaryLoader

from include import sql
from include.dag_defaults import RELAY_BATCH_SIZE
from include.relay.encoding import EncodedBatch, EventEncoder

log = logging.getLogger(__name__)

class RelayError(RuntimeError):
    """The batch was not acknowledged; nothing of it was marked published."""


class ProducerLike(Protocol):
    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None: ...
    def poll(self, timeout: float) -> int: ...
    def flush(self, timeout: float) -> int: ...


@dataclass
class RelayStats:
    sent: int = 0
    failed_encoding: int = 0
    batches: int = 0
    first_event_id: int | None = None
    last_event_id: int | None = None
    partition_offsets: dict[int, int] = field(default_factory=dict)
    sample_user_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)

    def timed(self, phase: str, since: float) -> float:
        now = time.perf_counter()
        self.phase_seconds[phase] = self.phase_seconds.get(phase, 0.0) + now - since
        return now

    def as_extra(self, sample_size: int = 20) -> dict[str, Any]:
        return {
            "events_sent": self.sent,
            "events_failed_encoding": self.failed_encoding,
            "batches": self.batches,
            "outbox_id_range": [self.first_event_id, self.last_event_id],
            "partition_last_offsets": {
                str(p): o for p, o in sorted(self.partition_offsets.items())},
            "sample_user_ids": self.sample_user_ids[:sample_size],
            "phase_seconds": {k: round(v, 3) for k, v in self.phase_seconds.items()},
        }


@dataclass
class _Deliveries:
    acked: int = 0
    errors: list[str] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)

    def __call__(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))
            return
        self.acked += 1
        partition, offset = msg.partition(), msg.offset()
        if offset > self.offsets.get(partition, -1):
            self.offsets[partition] = offset


POLL_EVERY = 1000  # serve delivery reports while producing, without a poll call per message


class _ClaimedBatch:
    """A batch of claimed events, oldest first, and the open transaction that holds their row
    locks. Text and the JSON payload stay the UTF-8 bytes PostgreSQL sent: orjson parses the
    payload's bytes directly, and the message key is the user_id's bytes as they came."""

    def __init__(self, conn: psycopg.Connection, batch_size: int) -> None:
        self.conn = conn
        self._transaction = ExitStack()
        self._transaction.enter_context(conn.transaction())
        try:
            with conn.cursor(binary=True) as cursor:
                for kind in ("text", "json"):
                    cursor.adapters.register_loader(kind, ByteaBinaryLoader)
                self.rows = cursor.execute(sql.load("relay/claim_batch"),
                                           {"batch_size": batch_size}).fetchall()
            self.ids = [row[0] for row in self.rows]
        except BaseException as exc:
            self.abort(exc)
            raise

    def commit(self, sent_ids: list[int], failures: list[tuple[int, str]]) -> None:
        try:
            if sent_ids:
                self.conn.execute(sql.load("relay/mark_published"), {"ids": sent_ids})
            if failures:
                with self.conn.cursor() as cur:
                    cur.executemany(sql.load("relay/mark_failed"),
                                    [{"id": i, "failure": reason} for i, reason in failures])
        except BaseException as exc:
            self.abort(exc)
            raise
        self._transaction.close()

    def abort(self, exc: BaseException) -> None:
        """Rolls back: every claimed event stays unpublished and unlocked."""
        self._transaction.__exit__(type(exc), exc, exc.__traceback__)


def _encode(batch: _ClaimedBatch, encoder: EventEncoder, stats: RelayStats) -> EncodedBatch:
    """Encodes a claimed batch without producing anything: an event that cannot be encoded
    becomes a failure with its reason."""
    mark = time.perf_counter()
    encoded = encoder.encode_batch(batch.rows)
    stats.timed("encode", mark)
    return encoded


def _produce(encoded: EncodedBatch, producer: ProducerLike, topic: str,
             stats: RelayStats) -> _Deliveries:
    mark = time.perf_counter()
    deliveries = _Deliveries()
    for produced, (_, key, value) in enumerate(encoded.messages, 1):
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=deliveries)
                break
            except BufferError:  # local queue full: let deliveries drain, then retry
                producer.poll(0.5)
        if produced % POLL_EVERY == 0:
            producer.poll(0)
    stats.timed("produce", mark)
    return deliveries


def _await_acks(ids: list[int], encoded: EncodedBatch, deliveries: _Deliveries,
                producer: ProducerLike, stats: RelayStats, flush_timeout_s: float) -> None:
    """Waits for every delivery report; raises RelayError unless the broker acknowledged all."""
    mark = time.perf_counter()
    remaining = producer.flush(flush_timeout_s)
    stats.timed("wait_acks", mark)
    sent = len(encoded.messages)
    if deliveries.errors or remaining or deliveries.acked != sent:
        problem = deliveries.errors[0] if deliveries.errors else (
            f"{remaining} message(s) still unacknowledged after {flush_timeout_s:.0f}s")
        raise RelayError(
            f"batch of {sent} events (ids {ids[0]}..{ids[-1]}) not "
            f"acknowledged by the broker ({len(deliveries.errors)} delivery error(s), "
            f"{deliveries.acked} acked): {problem}. Nothing of it was marked published.")
    for event_id, reason in encoded.failures:
        log.error("event %d marked failed: %s", event_id, reason)


def _count(stats: RelayStats, ids: list[int], encoded: EncodedBatch,
           offsets: dict[int, int]) -> None:
    stats.batches += 1
    stats.sent += len(encoded.messages)
    stats.failed_encoding += len(encoded.failures)
    stats.first_event_id = ids[0] if stats.first_event_id is None else stats.first_event_id
    stats.last_event_id = ids[-1]
    for partition, offset in offsets.items():
        stats.partition_offsets[partition] = max(offset, stats.partition_offsets.get(partition, -1))
    if len(stats.sample_user_ids) < 20:
        stats.sample_user_ids += [key.decode() for _, key, _ in
                                  encoded.messages[: 20 - len(stats.sample_user_ids)]]
    log.info("relayed batch %d: %d events (total %d, last id %s)", stats.batches, len(ids),
             stats.sent, stats.last_event_id)


def relay_pending(conn: psycopg.Connection, producer: ProducerLike, topic: str, schema_id: int,
                  parsed_schema: dict[str, Any], batch_size: int = RELAY_BATCH_SIZE,
                  max_batches: int | None = None, flush_timeout_s: float = 60.0) -> RelayStats:
    """Relays batches until the outbox has nothing unclaimed left (or max_batches): each batch is
    claimed, encoded, produced, acknowledged and committed in turn."""
    stats = RelayStats()
    started = time.perf_counter()
    encoder = EventEncoder(schema_id, parsed_schema)
    while max_batches is None or stats.batches < max_batches:
        batch = _claim(conn, batch_size, stats)
        if batch is None:
            break
        encoded = _encode(batch, encoder, stats)
        try:
            deliveries = _produce(encoded, producer, topic, stats)
            _await_acks(batch.ids, encoded, deliveries, producer, stats, flush_timeout_s)
        except BaseException as exc:
            batch.abort(exc)
            raise
        mark = time.perf_counter()
        batch.commit(encoded.event_ids(), encoded.failures)
        stats.timed("commit", mark)
        _count(stats, batch.ids, encoded, deliveries.offsets)
    stats.seconds = time.perf_counter() - started
    log.info("relay done: %d events sent, %d failed encoding, %d batches in %.1fs (%s)",
             stats.sent, stats.failed_encoding, stats.batches, stats.seconds,
             ", ".join(f"{k} {v:.1f}s" for k, v in stats.phase_seconds.items()))
    return stats


def _claim(conn: psycopg.Connection, batch_size: int, stats: RelayStats) -> _ClaimedBatch | None:
    """The next batch, or None (its empty transaction closed) when nothing is left to claim."""
    mark = time.perf_counter()
    batch = _ClaimedBatch(conn, batch_size)
    stats.timed("claim", mark)
    if not batch.ids:
        batch.commit([], [])
        return None
    return batch
