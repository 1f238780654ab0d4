"""The transactional-outbox relay: PostgreSQL `staging.user_events` -> Kafka `users_created`.

Each batch is claimed with `FOR UPDATE SKIP LOCKED` (so two relays never send the same event) in a
transaction that stays open until the broker has answered for every message of the batch. Then,
in that same transaction, the acknowledged events are marked published and the events that can
never be sent are marked failed with their reason: one that does not meet the record contract or
cannot be encoded, one whose message exceeds the broker's size limit, one the producer refuses.
They never block the events behind them. An event the broker did not acknowledge (an outage)
stays pending, and the task fails with the broker's error after committing the rest, so a retry
sends only what is missing.

Batches go one after another, and the order of arrival does not matter downstream: the Spark job
writes each row with its event's timestamp, so the newest event of a user wins wherever it lands.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import psycopg
from confluent_kafka import KafkaException
from psycopg.types.string import ByteaBinaryLoader

from include import sql
from include.dag_defaults import RELAY_BATCH_SIZE
from include.relay.encoding import MAX_REASON, EncodedBatch, EventEncoder

log = logging.getLogger(__name__)
SAMPLE_SIZE = 20
MAX_FAILURE_EXAMPLES = 5

class RelayError(RuntimeError):
    """Events of a batch were not acknowledged; they stay pending (the rest was published)."""


class ProducerLike(Protocol):
    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None: ...
    def poll(self, timeout: float) -> int: ...
    def flush(self, timeout: float) -> int: ...


@dataclass
class RelayStats:
    topic: str = ""
    sent: int = 0
    failed_encoding: int = 0
    batches: int = 0
    first_event_id: int | None = None
    last_event_id: int | None = None
    partition_offsets: dict[int, int] = field(default_factory=dict)
    partition_first_offsets: dict[int, int] = field(default_factory=dict)
    sample_user_ids: list[str] = field(default_factory=list)
    # (user_id, event_id) of sampled messages: the landing check wants each row at least as new
    sample_events: list[tuple[str, int]] = field(default_factory=list)
    failure_examples: list[tuple[int, str]] = field(default_factory=list)  # (event id, reason)
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)

    def timed(self, phase: str, since: float) -> float:
        now = time.perf_counter()
        self.phase_seconds[phase] = self.phase_seconds.get(phase, 0.0) + now - since
        return now

    def as_extra(self, sample_size: int = SAMPLE_SIZE) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "events_sent": self.sent,
            "events_failed_encoding": self.failed_encoding,
            "batches": self.batches,
            "outbox_id_range": [self.first_event_id, self.last_event_id],
            "partition_last_offsets": {
                str(p): o for p, o in sorted(self.partition_offsets.items())},
            "partition_first_offsets": {
                str(p): o for p, o in sorted(self.partition_first_offsets.items())},
            "sample_user_ids": self.sample_user_ids[:sample_size],
            "sample_events": [list(e) for e in self.sample_events[:sample_size]],
            "failure_examples": [list(e) for e in self.failure_examples],
            "phase_seconds": {k: round(v, 3) for k, v in self.phase_seconds.items()},
        }


@dataclass
class Deliveries:
    """The broker's answers for one batch, by event id: acknowledged (with partition offsets) or
    not, and why."""

    acked: list[int] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)
    first_offsets: dict[int, int] = field(default_factory=dict)

    def report(self, event_id: int, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append((event_id, str(err)))
            return
        self.acked.append(event_id)
        partition, offset = msg.partition(), msg.offset()
        if offset > self.offsets.get(partition, -1):
            self.offsets[partition] = offset
        if partition not in self.first_offsets or offset < self.first_offsets[partition]:
            self.first_offsets[partition] = offset


# Kafka's default for a topic's max.message.bytes and a producer's message.max.bytes.
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000
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


def _encode(batch: _ClaimedBatch, encoder: EventEncoder, stats: RelayStats,
            max_message_bytes: int) -> EncodedBatch:
    """Encodes a claimed batch without producing anything: an event that cannot be encoded, or
    whose message the broker would refuse as too large, becomes a failure with its reason."""
    mark = time.perf_counter()
    encoded = encoder.encode_batch(batch.rows, max_message_bytes)
    stats.timed("encode", mark)
    return encoded


def _produce(encoded: EncodedBatch, producer: ProducerLike, topic: str,
             stats: RelayStats) -> Deliveries:
    """Queues every message; one the client refuses outright (too large, for instance) becomes
    that event's failure, and the rest of the batch goes on."""
    mark = time.perf_counter()
    deliveries = Deliveries()
    for produced, (event_id, key, value) in enumerate(encoded.messages, 1):
        while True:
            try:
                producer.produce(topic, value=value, key=key,
                                 on_delivery=partial(deliveries.report, event_id))
                break
            except BufferError:  # local queue full: let deliveries drain, then retry
                producer.poll(0.5)
            except KafkaException as exc:
                encoded.failures.append((event_id, f"the producer refused it: {exc}"[:MAX_REASON]))
                break
        if produced % POLL_EVERY == 0:
            producer.poll(0)
    stats.timed("produce", mark)
    return deliveries


def _await_acks(encoded: EncodedBatch, deliveries: Deliveries, producer: ProducerLike,
                stats: RelayStats, flush_timeout_s: float) -> list[tuple[int, str]]:
    """Waits for every delivery report; returns the events the broker did not acknowledge, with
    the reason (none when all went through)."""
    mark = time.perf_counter()
    remaining = producer.flush(flush_timeout_s)
    stats.timed("wait_acks", mark)
    settled = {*deliveries.acked, *(i for i, _ in deliveries.errors),
               *(i for i, _ in encoded.failures)}
    unanswered = [(event_id, f"no acknowledgement after {flush_timeout_s:.0f}s "
                             f"({remaining} message(s) still queued)")
                  for event_id in encoded.event_ids() if event_id not in settled]
    for event_id, reason in encoded.failures:
        log.error("event %d marked failed: %s", event_id, reason)
    return deliveries.errors + unanswered


def _count(stats: RelayStats, ids: list[int], encoded: EncodedBatch,
           deliveries: Deliveries) -> None:
    offsets = deliveries.offsets
    stats.batches += 1
    stats.sent += len(deliveries.acked)
    stats.failed_encoding += len(encoded.failures)
    stats.first_event_id = ids[0] if stats.first_event_id is None else stats.first_event_id
    stats.last_event_id = ids[-1]
    for partition, offset in offsets.items():
        stats.partition_offsets[partition] = max(offset, stats.partition_offsets.get(partition, -1))
    for partition, offset in deliveries.first_offsets.items():
        known = stats.partition_first_offsets.get(partition, offset)
        stats.partition_first_offsets[partition] = min(offset, known)
    if len(stats.sample_events) < SAMPLE_SIZE:
        acked = set(deliveries.acked)
        stats.sample_events += [(key.decode(), event_id) for event_id, key, _ in
                                encoded.messages if event_id in acked
                                ][: SAMPLE_SIZE - len(stats.sample_events)]
        stats.sample_user_ids = [user_id for user_id, _ in stats.sample_events]
    room = MAX_FAILURE_EXAMPLES - len(stats.failure_examples)
    stats.failure_examples += encoded.failures[:room]
    log.info("relayed batch %d: %d events (total %d, last id %s)", stats.batches, len(ids),
             stats.sent, stats.last_event_id)


def relay_pending(conn: psycopg.Connection, producer: ProducerLike, topic: str, schema_id: int,
                  parsed_schema: dict[str, Any], batch_size: int = RELAY_BATCH_SIZE,
                  max_batches: int | None = None, flush_timeout_s: float = 60.0,
                  max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> RelayStats:
    """Relays batches until the outbox has nothing unclaimed left (or max_batches): each batch is
    claimed, encoded, produced, acknowledged and committed in turn."""
    stats = RelayStats(topic=topic)
    started = time.perf_counter()
    encoder = EventEncoder(schema_id, parsed_schema)
    while max_batches is None or stats.batches < max_batches:
        batch = _claim(conn, batch_size, stats)
        if batch is None:
            break
        encoded = _encode(batch, encoder, stats, max_message_bytes)
        try:
            deliveries = _produce(encoded, producer, topic, stats)
            undelivered = _await_acks(encoded, deliveries, producer, stats, flush_timeout_s)
        except BaseException as exc:
            batch.abort(exc)
            raise
        mark = time.perf_counter()
        # What the broker acknowledged is published even when other events of the batch were
        # not: a retry then sends only those, never an acknowledged event a second time.
        batch.commit(deliveries.acked, encoded.failures)
        stats.timed("commit", mark)
        _count(stats, batch.ids, encoded, deliveries)
        if undelivered:
            event_id, reason = undelivered[0]
            raise RelayError(
                f"{len(undelivered)} of {len(batch.ids)} events of the batch (ids "
                f"{batch.ids[0]}..{batch.ids[-1]}) were not acknowledged by the broker, e.g. "
                f"event {event_id}: {reason}. They stay pending for the next run; the "
                f"{len(deliveries.acked)} acknowledged events were marked published.")
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
