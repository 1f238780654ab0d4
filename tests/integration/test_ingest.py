"""Ingest hop against the real PostgreSQL and the bundled randomuser-compatible API."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from include.ingest.window import IngestWindow, incoming_row, ingest_window
from include.randomuser.client import RandomUserClient, RandomUserError, RetryPolicy
from include.randomuser.normalize import STAGED_COLUMNS, normalize_user
from local_stack.randomuser_api import set_faults
from local_stack.services import pg_connect
from local_stack.settings import PROJECT_ROOT

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FAST_RETRIES = RetryPolicy(max_attempts=4, base_delay_s=0.1, max_delay_s=0.5, max_total_s=30)


def _window() -> IngestWindow:
    # A unique DAG id and start per test give a fresh seed and window, so tests never collide.
    start = START + timedelta(minutes=random.randrange(1_000_000))
    return IngestWindow(f"test-{uuid.uuid4().hex[:8]}", start, start + timedelta(minutes=1))


def _client(policy: RetryPolicy = FAST_RETRIES) -> RandomUserClient:
    from airflow.providers.http.hooks.http import HttpHook

    from include import names

    return RandomUserClient(HttpHook(method="GET", http_conn_id=names.RANDOMUSER_CONN_ID), policy)


def _window_counts(conn, window: IngestWindow) -> dict[str, int]:
    row = conn.execute("""
        SELECT (SELECT count(*) FROM staging.users_raw WHERE seed = %(seed)s),
               (SELECT count(*) FROM staging.users WHERE first_window_start = %(start)s
                   AND user_id IN (SELECT (r->'login'->>'uuid')::uuid FROM staging.users_raw,
                                   jsonb_array_elements(response::jsonb->'results') r
                                   WHERE seed = %(seed)s)),
               (SELECT count(*) FROM staging.user_events WHERE user_id IN (
                   SELECT (r->'login'->>'uuid')::uuid FROM staging.users_raw,
                   jsonb_array_elements(response::jsonb->'results') r WHERE seed = %(seed)s)),
               (SELECT count(*) FROM staging.rejected_users WHERE seed = %(seed)s)
    """, {"seed": window.seed, "start": window.start}).fetchone()
    return dict(zip(("raw_pages", "users", "events", "rejected"), row, strict=True))


@pytest.fixture
def conn(stack, scratch_db):
    set_faults(stack.settings.randomuser_url)
    with pg_connect(stack, scratch_db) as connection:
        yield connection
    set_faults(stack.settings.randomuser_url)


def test_window_stages_users_and_outbox_events_once(conn):
    window = _window()
    first = ingest_window(window, _client(), conn, users_per_window=500)
    assert (first.fetched, first.inserted, first.updated, first.new_events) == (500, 500, 0, 500)
    assert first.max_event_id is not None
    counts = _window_counts(conn, window)
    assert counts == {"raw_pages": 1, "users": 500, "events": 500, "rejected": 0}
    users_before = conn.execute("SELECT user_id, content_hash FROM staging.users "
                                "WHERE first_window_start = %s ORDER BY user_id",
                                (window.start,)).fetchall()

    again = ingest_window(window, _client(), conn, users_per_window=500)
    assert (again.inserted, again.updated, again.unchanged, again.new_events) == (0, 0, 500, 0)
    assert _window_counts(conn, window) == counts
    users_after = conn.execute("SELECT user_id, content_hash FROM staging.users "
                               "WHERE first_window_start = %s ORDER BY user_id",
                               (window.start,)).fetchall()
    assert users_after == users_before


def test_staged_rows_and_payloads_equal_the_normalised_users(conn):
    # The COPY block is formatted by the ingest task itself, so read every column back and
    # compare it with the normaliser's output for the same raw results.
    window = _window()
    ingest_window(window, _client(), conn, users_per_window=300)
    results = conn.execute("SELECT r FROM staging.users_raw, "
                           "jsonb_array_elements(response::jsonb->'results') r WHERE seed = %s",
                           (window.seed,)).fetchall()
    expected = {user.user_id: user for user in (normalize_user(r) for (r,) in results)}
    columns = ", ".join(STAGED_COLUMNS)
    staged = conn.execute(f"SELECT {columns}, content_hash FROM staging.users "
                          "WHERE first_window_start = %s", (window.start,)).fetchall()
    assert len(staged) == len(expected) == 300
    for row in staged:
        user = expected[str(row[0])]
        assert (str(row[0]), *row[1:-1]) == tuple(user), user.user_id
        assert row[-1] == incoming_row(user)[-2]
    payloads = conn.execute("SELECT e.user_id, e.payload::text FROM staging.user_events e "
                            "JOIN staging.users u USING (user_id) WHERE u.first_window_start = %s",
                            (window.start,)).fetchall()
    assert {str(uid): orjson.loads(text) for uid, text in payloads} == {
        uid: orjson.loads(incoming_row(user)[-1]) for uid, user in expected.items()}


def test_changed_user_gets_exactly_one_new_event(conn):
    window = _window()
    ingest_window(window, _client(), conn, users_per_window=20)
    victim = conn.execute("SELECT user_id FROM staging.users WHERE first_window_start = %s "
                          "ORDER BY user_id LIMIT 1", (window.start,)).fetchone()[0]
    conn.execute("UPDATE staging.users SET content_hash = 'stale' WHERE user_id = %s", (victim,))
    result = ingest_window(window, _client(), conn, users_per_window=20)
    assert (result.inserted, result.updated, result.new_events) == (0, 1, 1)
    events = conn.execute("SELECT count(*) FROM staging.user_events WHERE user_id = %s",
                          (victim,)).fetchone()[0]
    assert events == 2


def test_paged_window_uses_one_seed(conn):
    window = _window()
    result = ingest_window(window, _client(), conn, users_per_window=12_000)
    assert (result.fetched, result.inserted) == (12_000, 12_000)
    assert _window_counts(conn, window)["raw_pages"] == 3


@pytest.mark.parametrize("mode", ["rate_limit", "server_error", "html", "malformed", "empty"])
def test_transient_fault_is_retried_then_succeeds(stack, conn, mode):
    set_faults(stack.settings.randomuser_url, mode=mode, count=2, retry_after=1)
    window = _window()
    started = time.monotonic()
    result = ingest_window(window, _client(), conn, users_per_window=50)
    assert result.inserted == 50
    if mode == "rate_limit":
        assert time.monotonic() - started >= 2.0, "Retry-After was not honoured"


@pytest.mark.parametrize(("mode", "message"), [
    ("rate_limit", "HTTP 429"), ("server_error", "HTTP 500"), ("html", "text/html"),
    ("malformed", "not JSON"), ("empty", "empty 'results'"),
])
def test_persistent_fault_fails_naming_the_problem(stack, conn, mode, message):
    set_faults(stack.settings.randomuser_url, mode=mode, count=10, retry_after=0)
    window = _window()
    with pytest.raises(RandomUserError, match=message):
        ingest_window(window, _client(), conn, users_per_window=50)
    assert _window_counts(conn, window) == {"raw_pages": 0, "users": 0, "events": 0,
                                            "rejected": 0}


def test_bad_records_are_quarantined_and_good_ones_kept(stack, conn):
    set_faults(stack.settings.randomuser_url, mode="bad_records", count=1, records=5)
    window = _window()
    result = ingest_window(window, _client(), conn, users_per_window=100)
    assert (result.fetched, result.rejected, result.inserted) == (100, 5, 95)
    rejects = conn.execute("SELECT position, reason, payload FROM staging.rejected_users "
                           "WHERE seed = %s ORDER BY position", (window.seed,)).fetchall()
    assert [r[0] for r in rejects] == [0, 1, 2, 3, 4]
    reasons = " | ".join(r[1] for r in rejects)
    for expected in ("login.uuid", "latitude", "dob.date", "missing 'login'", "email"):
        assert expected in reasons
    assert all(isinstance(orjson.loads(r[2]), dict) for r in rejects)  # the record's raw text


KILL_SCRIPT = """
import sys
from datetime import datetime
from airflow.providers.http.hooks.http import HttpHook
from include.ingest.window import IngestWindow, ingest_window
from local_stack.cli import make_context
from local_stack.services import pg_connect
from local_stack.settings import Settings
from include.randomuser.client import RandomUserClient
ctx, _ = make_context(Settings.from_env())
window = IngestWindow(sys.argv[1], datetime.fromisoformat(sys.argv[2]),
                      datetime.fromisoformat(sys.argv[3]))
with pg_connect(ctx, sys.argv[5]) as conn:
    ingest_window(window, RandomUserClient(HttpHook("GET", http_conn_id="randomuser_api")), conn,
                  users_per_window=int(sys.argv[4]))
"""


def test_killed_mid_write_leaves_nothing_and_the_retry_completes(stack, scratch_db, conn):
    window = _window()
    app = f"ingest-kill-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "PGAPPNAME": app}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, window.dag_id, window.start.isoformat(),
         window.end.isoformat(), "20000", scratch_db], cwd=PROJECT_ROOT, env=env)
    deadline = time.monotonic() + 120
    in_transaction = False
    while time.monotonic() < deadline and proc.poll() is None:
        row = conn.execute("SELECT state, query FROM pg_stat_activity WHERE application_name = %s "
                           "AND xact_start IS NOT NULL", (app,)).fetchone()
        if row is not None:
            in_transaction = True
            break
        time.sleep(0.05)
    assert in_transaction, "the ingest never opened its write transaction"
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    deadline = time.monotonic() + 30  # the server notices the dead client and rolls back
    while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                       (app,)).fetchone()[0] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _window_counts(conn, window) == {"raw_pages": 0, "users": 0, "events": 0,
                                            "rejected": 0}

    retry = ingest_window(window, _client(), conn, users_per_window=20000)
    assert (retry.inserted, retry.new_events) == (20000, 20000)
    assert _window_counts(conn, window)["users"] == 20000
