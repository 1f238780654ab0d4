"""The transactional-outbox relay: PostgreSQL `staging.user_events` -> Kafka `users_created`.

Each batch is claimed with `FOR UPDATE SKIP LOCKED` (so two relays never send the same event) in a
transaction that stays open until the broker has acknowledged every message of the batch. Only
then are the events marked published, in that same transaction. Any delivery failure rolls the
transaction back: the events stay unpublished and the task fails with the broker's error. An
event that cannot be encoded is marked failed with its reason and does not block the queue.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg

from include import sql
from include.relay.avro import encode, event_record

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5000


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

    def as_extra(self, sample_size: int = 20) -> dict[str, Any]:
        return {
            "events_sent": self.sent,
            "events_failed_encoding": self.failed_encoding,
            "batches": self.batches,
            "outbox_id_range": [self.first_event_id, self.last_event_id],
            "partition_last_offsets": {
                str(p): o for p, o in sorted(self.partition_offsets.items())},
            "sample_user_ids": self.sample_user_ids[:sample_size],
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


def relay_batch(conn: psycopg.Connection, producer: ProducerLike, topic: str, schema_id: int,
                parsed_schema: dict[str, Any], stats: RelayStats,
                batch_size: int = DEFAULT_BATCH_SIZE, flush_timeout_s: float = 60.0) -> int:
    """Relays one batch; returns how many events it claimed (0 when the outbox is drained)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(sql.load("relay/claim_batch"), {"batch_size": batch_size})
        rows = cur.fetchall()
        if not rows:
            return 0
        deliveries = _Deliveries()
        sent_ids: list[int] = []
        failures: list[tuple[int, str]] = []
        for event_id, user_id, content_hash, payload, created_at in rows:
            try:
                value = encode(schema_id, parsed_schema,
                               event_record(event_id, payload, content_hash, created_at))
            except (ValueError, TypeError, KeyError) as exc:
                failures.append((event_id, f"cannot encode: {type(exc).__name__}: {exc}"[:1000]))
                continue
            while True:
                try:
                    producer.produce(topic, value=value, key=str(user_id).encode(),
                                     on_delivery=deliveries)
                    break
                except BufferError:  # local queue full: let deliveries drain, then retry
                    producer.poll(0.5)
            sent_ids.append(event_id)
            producer.poll(0)
        remaining = producer.flush(flush_timeout_s)
        if deliveries.errors or remaining or deliveries.acked != len(sent_ids):
            problem = deliveries.errors[0] if deliveries.errors else (
                f"{remaining} message(s) still unacknowledged after {flush_timeout_s:.0f}s")
            raise RelayError(
                f"batch of {len(sent_ids)} events (ids {rows[0][0]}..{rows[-1][0]}) not "
                f"acknowledged by the broker ({len(deliveries.errors)} delivery error(s), "
                f"{deliveries.acked} acked): {problem}. Nothing of it was marked published.")
        if sent_ids:
            cur.execute(sql.load("relay/mark_published"), {"ids": sent_ids})
        if failures:
            cur.executemany(sql.load("relay/mark_failed"),
                            [{"id": i, "failure": reason} for i, reason in failures])
            for event_id, reason in failures:
                log.error("event %d marked failed: %s", event_id, reason)
    stats.batches += 1
    stats.sent += len(sent_ids)
    stats.failed_encoding += len(failures)
    stats.first_event_id = rows[0][0] if stats.first_event_id is None else stats.first_event_id
    stats.last_event_id = rows[-1][0]
    for partition, offset in deliveries.offsets.items():
        stats.partition_offsets[partition] = max(offset, stats.partition_offsets.get(partition, -1))
    if len(stats.sample_user_ids) < 20:
        stats.sample_user_ids += [str(r[1]) for r in rows[: 20 - len(stats.sample_user_ids)]]
    return len(rows)


def relay_pending(conn: psycopg.Connection, producer: ProducerLike, topic: str, schema_id: int,
                  parsed_schema: dict[str, Any], batch_size: int = DEFAULT_BATCH_SIZE,
                  max_batches: int | None = None) -> RelayStats:
    """Relays batches until the outbox has nothing unclaimed left (or max_batches)."""
    stats = RelayStats()
    started = time.perf_counter()
    while max_batches is None or stats.batches < max_batches:
        claimed = relay_batch(conn, producer, topic, schema_id, parsed_schema, stats, batch_size)
        if claimed == 0:
            break
        log.info("relayed batch %d: %d events (total %d, last id %s)", stats.batches, claimed,
                 stats.sent, stats.last_event_id)
    stats.seconds = time.perf_counter() - started
    log.info("relay done: %d events sent, %d failed encoding, %d batches in %.1fs", stats.sent,
             stats.failed_encoding, stats.batches, stats.seconds)
    return stats
