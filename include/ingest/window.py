"""One ingest window: fetch the window's users, then stage them with their outbox events in one
PostgreSQL transaction. Deterministic: the seed derives from the DAG id and the window start, so
a rerun or backfill of a window asks the API for exactly the same users."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any

import psycopg

from include import sql
from include.randomuser.client import Page, RandomUserClient
from include.randomuser.normalize import STAGED_COLUMNS, InvalidUser, StagedUser, normalize_user

log = logging.getLogger(__name__)

DEFAULT_USERS_PER_WINDOW = 500
row_of = attrgetter(*STAGED_COLUMNS)


@dataclass(frozen=True)
class IngestWindow:
    dag_id: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be time-zone aware")
        if self.end <= self.start:
            raise ValueError(f"window end {self.end} is not after its start {self.start}")

    @property
    def seed(self) -> str:
        key = f"{self.dag_id}|{self.start.isoformat()}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Reject:
    page: int
    position: int
    user_id: str | None
    reason: str
    payload: Any


@dataclass
class IngestResult:
    window_start: str
    window_end: str
    seed: str
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    new_events: int = 0
    max_event_id: int | None = None
    timings_s: dict[str, float] = field(default_factory=dict)

    def as_extra(self) -> dict[str, Any]:
        """The small facts an asset event carries (never the data itself)."""
        return asdict(self)


def split_valid(pages: list[Page]) -> tuple[list[StagedUser], list[Reject]]:
    users: list[StagedUser] = []
    rejects: list[Reject] = []
    seen: set[str] = set()
    for page in pages:
        for position, raw in enumerate(page.results):
            try:
                user = normalize_user(raw)
            except InvalidUser as exc:
                user_id = raw.get("login", {}).get("uuid") if isinstance(raw, dict) else None
                rejects.append(Reject(page.page, position, _short(user_id), str(exc), raw))
                continue
            if user.user_id in seen:
                rejects.append(Reject(page.page, position, user.user_id,
                                      "duplicate login.uuid within the window", raw))
                continue
            seen.add(user.user_id)
            users.append(user)
    return users, rejects


def _short(value: Any) -> str | None:
    return None if value is None else str(value)[:200]


def write_window(conn: psycopg.Connection, window: IngestWindow, pages: list[Page],
                 users: list[StagedUser], rejects: list[Reject]) -> dict[str, int | None]:
    """Stages the whole window in one transaction: raw pages, users, rejects, outbox events."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET LOCAL TimeZone = 'UTC'")  # the content hash hashes timestamps as text
        cur.execute("SET LOCAL work_mem = '64MB'")
        for page in pages:
            cur.execute(sql.load("ingest/upsert_raw_page"),
                        (window.seed, page.page, window.start, window.end, len(page.results),
                         page.body.decode("utf-8")))
        if rejects:
            cur.executemany(sql.load("ingest/upsert_rejected"), [
                (window.seed, r.page, r.position, window.start, r.user_id, r.reason,
                 json.dumps(r.payload, ensure_ascii=False)) for r in rejects])
        cur.execute(sql.load("ingest/create_incoming"))
        with cur.copy(f"COPY incoming_users ({', '.join(STAGED_COLUMNS)}) FROM STDIN") as copy:
            for user in users:
                copy.write_row(row_of(user))
        cur.execute(sql.load("ingest/merge_users"), {"window_start": window.start})
        inserted, updated, new_events, max_event_id = cur.fetchone()
    return {"inserted": inserted, "updated": updated, "new_events": new_events,
            "max_event_id": max_event_id}


def ingest_window(window: IngestWindow, client: RandomUserClient, conn: psycopg.Connection,
                  users_per_window: int = DEFAULT_USERS_PER_WINDOW,
                  nat: str | None = None) -> IngestResult:
    result = IngestResult(window.start.isoformat(), window.end.isoformat(), window.seed)
    log.info("ingest window %s..%s seed=%s users=%d nat=%s", window.start, window.end,
             window.seed, users_per_window, nat or "all")
    started = time.perf_counter()
    pages = client.fetch_window(window.seed, users_per_window, nat)
    fetch_s = time.perf_counter() - started
    started = time.perf_counter()
    users, rejects = split_valid(pages)
    normalize_s = time.perf_counter() - started
    started = time.perf_counter()
    counts = write_window(conn, window, pages, users, rejects)
    write_s = time.perf_counter() - started
    result.fetched = sum(len(p.results) for p in pages)
    result.rejected = len(rejects)
    result.inserted = int(counts["inserted"] or 0)
    result.updated = int(counts["updated"] or 0)
    result.unchanged = len(users) - result.inserted - result.updated
    result.new_events = int(counts["new_events"] or 0)
    result.max_event_id = counts["max_event_id"]
    # Pages are fetched two at a time, so the fetch phase is wall time; inside it, "http" and
    # "json" are summed over pages and may overlap.
    result.timings_s = {
        "fetch_wall": round(fetch_s, 3),
        "http": round(sum(p.http_seconds for p in pages), 3),
        "json": round(sum(p.parse_seconds for p in pages), 3),
        "normalize": round(normalize_s, 3),
        "write": round(write_s, 3),
    }
    for reject in rejects:
        log.warning("rejected page %d position %d (user %s): %s", reject.page, reject.position,
                    reject.user_id, reject.reason)
    log.info("window %s: fetched=%d inserted=%d updated=%d unchanged=%d rejected=%d "
             "new_events=%d max_event_id=%s timings=%s", window.seed, result.fetched,
             result.inserted, result.updated, result.unchanged, result.rejected,
             result.new_events, result.max_event_id, result.timings_s)
    return result
