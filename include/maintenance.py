"""Retention and replay of the staging data.

- `prune_staging` deletes published outbox events and raw API pages older than the retention
  (`USERSTREAM_RETENTION_DAYS`, 7 by default): about 2.3 GB per million users otherwise stay for
  ever. It walks the ids in batches, each its own short transaction, so it never holds many locks
  or a long snapshot beside ingest and the relay. Pending and failed events are never deleted.
- `mark_for_replay` makes published events of an id range, or of ingest windows, pending again;
  the relay then sends them once more through its normal path, and the stream upserts them
  harmlessly (a user's row keeps its newest event: write timestamps follow event ids).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from include import sql

log = logging.getLogger(__name__)

RETENTION_SETTING = "USERSTREAM_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 7
PRUNE_BATCH_SIZE = 10_000
LAST_EVENT_ID = 2**63 - 1


def retention_days(environ: Any = os.environ) -> int:
    raw = environ.get(RETENTION_SETTING) or str(DEFAULT_RETENTION_DAYS)
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{RETENTION_SETTING} must be a whole number of days >= 1, got {raw!r}")
    return int(raw)


@dataclass
class Pruned:
    cutoff: datetime
    events_deleted: int = 0
    raw_pages_deleted: int = 0
    batches: int = 0

    def as_extra(self) -> dict[str, Any]:
        return {"cutoff": self.cutoff.isoformat(), "events_deleted": self.events_deleted,
                "raw_pages_deleted": self.raw_pages_deleted, "batches": self.batches}


# (table, timestamp column, the batch's DELETE): rows older than the cutoff are only found among
# rows created before it, and ids grow with creation time, so the walk stops at the first row
# created after the cutoff.
_PRUNED_TABLES = (
    ("staging.user_events", "created_at", "maintenance/prune_published_events"),
    ("staging.users_raw", "fetched_at", "maintenance/prune_raw_pages"),
)


def prune_staging(conn: Any, older_than: timedelta, batch_size: int = PRUNE_BATCH_SIZE,
                  now: datetime | None = None) -> Pruned:
    """Deletes published events and raw pages older than `older_than` (`conn`: autocommit)."""
    result = Pruned(cutoff=(now or datetime.now(UTC)) - older_than)
    for table, created, statement in _PRUNED_TABLES:
        deleted, from_id = 0, 0
        while True:
            # The next row left, wherever the gaps of earlier deletions are.
            first = conn.execute(f"SELECT id, {created} FROM {table} WHERE id >= %s ORDER BY id "
                                 "LIMIT 1", (from_id,)).fetchone()
            if first is None or first[1] >= result.cutoff:
                break
            from_id = first[0]
            deleted += conn.execute(sql.load(statement), {
                "from_id": from_id, "batch_size": batch_size,
                "cutoff": result.cutoff}).fetchone()[0]
            result.batches += 1
            from_id += batch_size
        log.info("retention: %d rows of %s older than %s deleted", deleted, table,
                 result.cutoff.isoformat())
        if table == "staging.user_events":
            result.events_deleted = deleted
        else:
            result.raw_pages_deleted = deleted
    return result


@dataclass
class Replay:
    events: int
    first_event_id: int | None
    last_event_id: int | None

    def as_extra(self) -> dict[str, Any]:
        return {"events_marked": self.events,
                "outbox_id_range": [self.first_event_id, self.last_event_id]}


def mark_for_replay(conn: Any, first_event_id: int | None = None,
                    last_event_id: int | None = None, window_start: datetime | str | None = None,
                    window_end: datetime | str | None = None) -> Replay:
    """Makes the published events of the range pending again (ids inclusive; windows by their
    start, `window_end` exclusive). At least one bound must be given."""
    if all(v is None for v in (first_event_id, last_event_id, window_start, window_end)):
        raise ValueError("a replay needs an event id range or an ingest window range")
    count, first, last = conn.execute(sql.load("maintenance/replay_events"), {
        "first_id": first_event_id or 0, "last_id": last_event_id or LAST_EVENT_ID,
        "window_start": window_start, "window_end": window_end}).fetchone()
    log.info("replay: %d published events (ids %s..%s) are pending again", count, first, last)
    return Replay(count, first, last)


def _connect(database: str | None) -> Any:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from include import names

    conn = PostgresHook(postgres_conn_id=names.POSTGRES_CONN_ID,
                        database=database or None).get_conn()
    conn.autocommit = True
    return conn


def run_prune(days: int | None = None, database: str | None = None) -> Pruned:
    """The retention task: `days` (else the setting) on the connection's database (or
    `database`)."""
    with _connect(database) as conn:
        return prune_staging(conn, timedelta(days=days or retention_days()))


def run_mark_for_replay(database: str | None = None, **bounds: Any) -> Replay:
    with _connect(database) as conn:
        return mark_for_replay(conn, **bounds)
