"""Ingest against hostile input, through the real PostgreSQL (a scratch database): the records the
hardening issue names and generated damage to real API records. The page's bytes are served as
the API would send them; every record is staged exactly as given or quarantined with its reason
and raw text, and the rest of the window lands."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.ingest.window import IngestWindow, ingest_window
from include.randomuser.client import RandomUserClient, RetryPolicy
from include.randomuser.normalize import STAGED_COLUMNS
from local_stack.services import pg_connect
from tests.unit.test_normalize_hostile import (
    NAMED_CASES,
    SAMPLE,
    assert_staged_as_given,
    damage,
    set_path,
)


class ServedBody:
    """The API's side of the exchange: one fixed response body for every request."""

    def __init__(self, results: list) -> None:
        self.body = json.dumps({"results": results, "info": {
            "seed": "x", "results": len(results), "page": 1, "version": "1.4"}}).encode()

    def run(self, endpoint, data, headers=None, extra_options=None):
        return SimpleNamespace(status_code=200, content=self.body,
                               headers={"Content-Type": "application/json"})


def hostile_window() -> IngestWindow:
    start = datetime(2026, 5, 1, tzinfo=UTC) + timedelta(minutes=random.randrange(10**6))
    return IngestWindow(f"hostile-{uuid.uuid4().hex[:8]}", start, start + timedelta(minutes=1))


def fresh_users(count: int) -> list[dict]:
    users = [json.loads(json.dumps(SAMPLE[i % len(SAMPLE)])) for i in range(count)]
    for user in users:
        user["login"]["uuid"] = str(uuid.uuid4())
    return users


def _ingest(conn, results: list) -> tuple[IngestWindow, object, ServedBody]:
    served = ServedBody(results)
    window = hostile_window()
    client = RandomUserClient(served, RetryPolicy(max_attempts=1))
    return window, ingest_window(window, client, conn, users_per_window=len(results)), served


def _staged(conn, user_ids: list[str]) -> dict[str, SimpleNamespace]:
    rows = conn.execute(f"SELECT {', '.join(STAGED_COLUMNS)} FROM staging.users "
                        "WHERE user_id = ANY(%s::uuid[])", (user_ids,))
    columns = [c.name for c in rows.description]
    return {str(row[0]): SimpleNamespace(**{**dict(zip(columns, row, strict=True)),
                                            "user_id": str(row[0])}) for row in rows}


@pytest.fixture
def conn(stack, scratch_db):
    with pg_connect(stack, scratch_db) as connection:
        yield connection


def test_the_named_records_are_quarantined_with_their_raw_text_and_110_users_land(conn):
    results = fresh_users(110)
    bad = []
    for case in sorted(NAMED_CASES):
        record = fresh_users(1)[0]
        NAMED_CASES[case](record)
        bad.append(record)
    results[5:5] = bad
    window, result, served = _ingest(conn, results)
    assert (result.fetched, result.rejected, result.inserted) == (120, 10, 110)
    rejects = conn.execute("SELECT position, reason, payload FROM staging.rejected_users "
                           "WHERE seed = %s ORDER BY position", (window.seed,)).fetchall()
    assert [r[0] for r in rejects] == list(range(5, 15))
    for (position, reason, raw_text), record in zip(rejects, bad, strict=True):
        assert reason
        assert json.loads(raw_text) == record or raw_text == json.dumps(record), position
    raw_page = conn.execute("SELECT response FROM staging.users_raw WHERE seed = %s",
                            (window.seed,)).fetchone()[0]
    assert raw_page == served.body.decode()  # kept whole, NUL and surrogate escapes included
    good = [r for i, r in enumerate(results) if not 5 <= i < 15]
    staged = _staged(conn, [r["login"]["uuid"] for r in good])
    assert len(staged) == 110
    for record in good:
        assert_staged_as_given(record, staged[record["login"]["uuid"]])


def test_a_user_postgresql_refuses_is_quarantined_and_the_rest_of_the_page_lands(conn):
    results = fresh_users(30)
    results[11]["name"]["last"] = "Refused-by-a-check"
    conn.execute("ALTER TABLE staging.users ADD CONSTRAINT test_refuses_one_name "
                 "CHECK (last_name IS DISTINCT FROM 'Refused-by-a-check')")
    try:
        window, result, _ = _ingest(conn, results)
    finally:
        conn.execute("ALTER TABLE staging.users DROP CONSTRAINT test_refuses_one_name")
    assert (result.fetched, result.rejected, result.inserted) == (30, 1, 29)
    reject = conn.execute("SELECT position, reason FROM staging.rejected_users WHERE seed = %s",
                          (window.seed,)).fetchall()
    assert reject[0][0] == 11 and "PostgreSQL refused" in reject[0][1]
    events = conn.execute("SELECT count(*) FROM staging.user_events WHERE user_id = ANY(%s)",
                          ([uuid.UUID(r["login"]["uuid"]) for r in results],)).fetchone()[0]
    assert events == 29


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(damages=st.lists(st.tuples(st.integers(0, 19), damage), min_size=1, max_size=15))
def test_generated_damage_never_fails_a_window_and_loses_nothing(conn, damages):
    results = fresh_users(20)
    for position, (path, value, delete) in damages:
        set_path(results[position], path, value, delete)
    window, result, _ = _ingest(conn, results)
    staged_count = result.inserted + result.updated + result.unchanged
    quarantined = conn.execute("SELECT count(*) FROM staging.rejected_users WHERE seed = %s",
                               (window.seed,)).fetchone()[0]
    assert staged_count + quarantined == result.fetched == 20
    assert quarantined == result.rejected
    ids = [r["login"]["uuid"] for r in results
           if isinstance(r.get("login"), dict) and isinstance(r["login"].get("uuid"), str)]
    staged = _staged(conn, [i for i in ids if _is_uuid(i)])
    assert len(staged) == staged_count
    for record in results:
        user_id = record.get("login", {}).get("uuid") if isinstance(record.get("login"),
                                                                     dict) else None
        if isinstance(user_id, str) and _is_uuid(user_id) and str(uuid.UUID(user_id)) in staged:
            assert_staged_as_given(record, staged[str(uuid.UUID(user_id))])
    payloads = conn.execute("SELECT payload::text FROM staging.user_events e JOIN staging.users u "
                            "USING (user_id) WHERE u.user_id = ANY(%s::uuid[])",
                            (list(staged),)).fetchall()
    assert all(orjson.loads(p[0]) for p in payloads)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
