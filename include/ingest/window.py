"""One ingest window: fetch the window's users, then stage them with their outbox events in one
PostgreSQL transaction. Deterministic: the seed derives from the DAG id and the window start, so
a rerun or backfill of a window asks the API for exactly the same users."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.copy import Copy, FileWriter

from include import sql
from include.dag_defaults import USERS_PER_WINDOW
from include.randomuser.client import Page, RandomUserClient
from include.randomuser.normalize import STAGED_COLUMNS, InvalidUser, StagedUser, normalize_user

log = logging.getLogger(__name__)


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


@dataclass
class PageSplit:
    """A page's staged users with their positions in the page, and its rejects."""

    users: list[StagedUser] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


def split_page(page: Page, seen: set[str]) -> PageSplit:
    """Normalises one page; `seen` carries the window's user ids across its pages. A record that
    cannot be normalised, whatever the reason, becomes a reject: it never fails the window."""
    split = PageSplit()
    rejects = split.rejects
    for position, raw in enumerate(page.results):
        try:
            user = normalize_user(raw)
        except InvalidUser as exc:
            rejects.append(Reject(page.page, position, raw_user_id(raw), printable(str(exc)),
                                  raw))
            continue
        except Exception as exc:  # a record no rule foresaw still must not fail its window
            rejects.append(Reject(page.page, position, raw_user_id(raw),
                                  printable(f"cannot normalise: {type(exc).__name__}: {exc}"),
                                  raw))
            continue
        if user.user_id in seen:
            rejects.append(Reject(page.page, position, user.user_id,
                                  "duplicate login.uuid within the window", raw))
            continue
        seen.add(user.user_id)
        split.users.append(user)
        split.positions.append(position)
    return split


def raw_user_id(raw: Any) -> str | None:
    """The record's login.uuid as text when it has one (for the reject row), else None."""
    login = raw.get("login") if isinstance(raw, dict) else None
    value = login.get("uuid") if isinstance(login, dict) else None
    return None if value is None else printable(value if isinstance(value, str) else repr(value))


def printable(text: str, limit: int = 1000) -> str:
    """Text PostgreSQL's text type takes: NUL, other controls and lone surrogates escaped."""
    text = text[:limit]
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def raw_text(value: Any) -> str:
    """A record as JSON text that PostgreSQL's text type takes whatever it holds: NUL and lone
    surrogates are escaped, huge numbers kept as written."""
    return json.dumps(value, ensure_ascii=True, default=repr)


def incoming_row(user: StagedUser) -> tuple[Any, ...]:
    """The user's staging columns, then its content hash and outbox payload. The payload is the
    user as JSON (column names as keys, in column order, so identical content gives identical
    text) and the hash is the md5 of that text: building both here keeps that work off the one
    PostgreSQL backend the window's transaction runs on."""
    payload = orjson.dumps(user._asdict())
    return (uuid.UUID(user.user_id), *user[1:],
            hashlib.md5(payload, usedforsecurity=False).hexdigest(), payload.decode())


INCOMING_COLUMNS = (*STAGED_COLUMNS, "content_hash", "payload")
# Binary COPY: PostgreSQL reads numbers, timestamps and uuids without parsing their text.
COPY_INCOMING = f"COPY incoming_users ({', '.join(INCOMING_COLUMNS)}) FROM STDIN (FORMAT BINARY)"


def incoming_types(cur: psycopg.Cursor[Any]) -> list[int]:
    """The type oids of `incoming_users`' columns in COPY order (binary COPY needs them), read
    from the table itself so they follow the schema."""
    cur.execute("SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = "
                "'incoming_users'::regclass AND attnum > 0 AND NOT attisdropped")
    types = dict(cur.fetchall())
    return [types[column] for column in INCOMING_COLUMNS]


def copy_block(conn: psycopg.Connection, types: list[int], users: list[StagedUser]) -> bytes:
    """The users' incoming rows as one whole binary COPY block (header, rows, trailer), built
    without touching the server: the thread that normalises the page formats it, so the writer
    thread only sends bytes and no longer waits for the GIL between chunks of rows."""
    buffer = io.BytesIO()
    with conn.cursor() as cur, Copy(cur, binary=True, writer=FileWriter(buffer)) as copy:
        copy.set_types(types)
        for user in users:
            copy.write_row(incoming_row(user))
    return buffer.getvalue()


@dataclass
class MergeCounts:
    inserted: int = 0
    updated: int = 0
    new_events: int = 0
    max_event_id: int | None = None

    def add(self, inserted: int, updated: int, new_events: int, max_event_id: int | None) -> None:
        self.inserted += inserted
        self.updated += updated
        self.new_events += new_events
        if max_event_id is not None:
            self.max_event_id = max(self.max_event_id or 0, max_event_id)


class WindowWriter:
    """Stages a window's pages from one background thread on the window's connection, in page
    order, so PostgreSQL stores and merges page n while this process fetches and normalises
    page n+1. At most `max_pending` pages wait; a failed write is raised to the caller at the
    next page or at `drain`, and the caller's transaction then rolls the whole window back."""

    def __init__(self, conn: psycopg.Connection, window: IngestWindow, max_pending: int = 4):
        self.conn = conn
        self.window = window
        self.max_pending = max_pending
        self.busy_s = 0.0
        self.counts = MergeCounts()
        self.refused = 0  # users PostgreSQL refused, quarantined by the writer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")
        self._pending: deque[Future[None]] = deque()

    def __enter__(self) -> WindowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit_raw(self, page: Page) -> None:
        """Queues the page's raw response: PostgreSQL stores it while the page is normalised."""
        self._submit(self._write_raw, page.page, len(page.results), page.body)

    def submit_users(self, page: Page, split: PageSplit, block: bytes,
                     copy_types: list[int]) -> None:
        """Queues the page's normalised users as a binary COPY block (see `copy_block`) to be
        copied and merged, and its rejects."""
        self._submit(self._write_users, page, split, block, copy_types)

    def drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def _submit(self, write: Callable[..., None], *args: Any) -> None:
        while len(self._pending) >= self.max_pending:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._timed, write, *args))

    def _timed(self, write: Callable[..., None], *args: Any) -> None:
        started = time.perf_counter()
        write(*args)
        self.busy_s += time.perf_counter() - started

    def _write_raw(self, page: int, results: int, body: bytes) -> None:
        window = self.window
        self.conn.execute(sql.load("ingest/upsert_raw_page"),
                          (window.seed, page, window.start, window.end, results,
                           body.decode("utf-8")))

    def _write_users(self, page: Page, split: PageSplit, block: bytes,
                     copy_types: list[int]) -> None:
        with self.conn.cursor() as cur:
            self._quarantine(cur, split.rejects)
            try:
                with self.conn.transaction():  # a savepoint: a refused page goes user by user
                    self._merge(cur, block)
            except (psycopg.DataError, psycopg.IntegrityError) as exc:
                log.warning("PostgreSQL refused page %d as a whole (%s); staging it user by "
                            "user", page.page, exc)
                self._merge_one_by_one(cur, page, split, copy_types)

    def _merge(self, cur: psycopg.Cursor[Any], block: bytes) -> None:
        with cur.copy(COPY_INCOMING) as copy:
            copy.write(block)
        cur.execute(sql.load("ingest/merge_users"), {"window_start": self.window.start})
        self.counts.add(*cur.fetchone())
        cur.execute("TRUNCATE incoming_users")

    def _merge_one_by_one(self, cur: psycopg.Cursor[Any], page: Page, split: PageSplit,
                          copy_types: list[int]) -> None:
        """Stages each user in its own savepoint; a user PostgreSQL refuses is quarantined."""
        for user, position in zip(split.users, split.positions, strict=True):
            try:
                with self.conn.transaction():
                    self._merge(cur, copy_block(self.conn, copy_types, [user]))
            except (psycopg.DataError, psycopg.IntegrityError) as exc:
                reject = Reject(page.page, position, user.user_id,
                                printable(f"PostgreSQL refused the user: {exc}"),
                                page.results[position])
                log.warning("rejected page %d position %d (user %s): %s", reject.page,
                            reject.position, reject.user_id, reject.reason)
                self._quarantine(cur, [reject])
                self.refused += 1

    def _quarantine(self, cur: psycopg.Cursor[Any], rejects: list[Reject]) -> None:
        if rejects:
            window = self.window
            cur.executemany(sql.load("ingest/upsert_rejected"), [
                (window.seed, r.page, r.position, window.start, r.user_id, r.reason,
                 raw_text(r.payload)) for r in rejects])


def ingest_window(window: IngestWindow, client: RandomUserClient, conn: psycopg.Connection,
                  users_per_window: int = USERS_PER_WINDOW,
                  nat: str | None = None) -> IngestResult:
    """Fetches, normalises and stages the window page by page inside one transaction (raw pages,
    users, rejects, outbox events): a failure anywhere leaves nothing of the window behind."""
    result = IngestResult(window.start.isoformat(), window.end.isoformat(), window.seed)
    log.info("ingest window %s..%s seed=%s users=%d nat=%s", window.start, window.end,
             window.seed, users_per_window, nat or "all")
    started = time.perf_counter()
    waiting_s = normalize_s = http_s = json_s = 0.0
    seen: set[str] = set()
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET LOCAL work_mem = '64MB'")
        cur.execute(sql.load("ingest/create_incoming"))
        copy_types = incoming_types(cur)
        with WindowWriter(conn, window) as writer:
            waited = time.perf_counter()
            for page in client.iter_window(window.seed, users_per_window, nat):
                waiting_s += time.perf_counter() - waited
                writer.submit_raw(page)
                normalizing = time.perf_counter()
                split = split_page(page, seen)
                rejects = split.rejects
                block = copy_block(conn, copy_types, split.users)
                normalize_s += time.perf_counter() - normalizing
                writer.submit_users(page, split, block, copy_types)
                http_s += page.http_seconds
                json_s += page.parse_seconds
                result.fetched += len(page.results)
                result.rejected += len(rejects)
                for reject in rejects:
                    log.warning("rejected page %d position %d (user %s): %s", reject.page,
                                reject.position, reject.user_id, reject.reason)
                waited = time.perf_counter()
            writer.drain()
            draining_s = time.perf_counter() - waited
        counts = writer.counts
        result.rejected += writer.refused
    result.inserted = counts.inserted
    result.updated = counts.updated
    result.unchanged = len(seen) - writer.refused - result.inserted - result.updated
    result.new_events = counts.new_events
    result.max_event_id = counts.max_event_id
    # Pages are fetched two ahead and written behind, so the phases overlap: "http" and "json"
    # are summed over pages, "waiting" is this thread waiting for the API, "normalize" its own
    # work, "write" the writer's busy time (raw page, COPY, merge), "drain" the wait for the
    # last writes after the last page; "total" is wall time.
    result.timings_s = {
        "total": round(time.perf_counter() - started, 3),
        "http": round(http_s, 3),
        "json": round(json_s, 3),
        "waiting": round(waiting_s, 3),
        "normalize": round(normalize_s, 3),
        "write": round(writer.busy_s, 3),
        "drain": round(draining_s, 3),
    }
    log.info("window %s: fetched=%d inserted=%d updated=%d unchanged=%d rejected=%d "
             "new_events=%d max_event_id=%s timings=%s", window.seed, result.fetched,
             result.inserted, result.updated, result.unchanged, result.rejected,
             result.new_events, result.max_event_id, result.timings_s)
    return result
