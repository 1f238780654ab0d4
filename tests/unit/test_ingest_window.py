"""Window identity and the split of a response into staged users and rejects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include.ingest.window import IngestWindow, split_page
from include.randomuser.client import Page
from local_stack.randomuser_api import NATIONALITIES, corrupt, generate

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_seed_is_deterministic_per_dag_and_window():
    window = IngestWindow("ingest_users", START, START + timedelta(minutes=1))
    assert window.seed == IngestWindow("ingest_users", START, START + timedelta(minutes=1)).seed
    assert window.seed != IngestWindow("ingest_users", START + timedelta(minutes=1),
                                       START + timedelta(minutes=2)).seed
    assert window.seed != IngestWindow("other", START, START + timedelta(minutes=1)).seed


def test_window_bounds_are_checked():
    with pytest.raises(ValueError, match="time-zone"):
        IngestWindow("d", START.replace(tzinfo=None), START.replace(tzinfo=None))
    with pytest.raises(ValueError, match="not after"):
        IngestWindow("d", START, START)


def _page(users, number=1):
    return Page(number, len(users), {"results": users, "info": {}}, b"{}", 1, 0.0, 0.0)


def test_bad_and_duplicate_records_are_rejected_and_good_ones_kept():
    users = generate("w", 1, 20, sorted(NATIONALITIES))
    corrupt(users, 3)
    users.append(dict(users[10]))  # the same user twice in one window
    split = split_page(_page(users), set())
    staged, rejects = split.users, split.rejects
    assert len(staged) == 17
    assert [r.position for r in rejects] == [0, 1, 2, 20]
    assert "duplicate" in rejects[-1].reason
    assert all(r.reason for r in rejects)


def test_incoming_row_carries_a_stable_payload_and_its_hash():
    from hashlib import md5
    from uuid import UUID

    import orjson

    from include.ingest.window import INCOMING_COLUMNS, incoming_row

    staged = split_page(_page(generate("row", 1, 3, sorted(NATIONALITIES))), set()).users
    user = staged[0]
    row = incoming_row(user)
    assert len(row) == len(INCOMING_COLUMNS)
    assert row[0] == UUID(user.user_id)
    *_, content_hash, payload = row
    assert content_hash == md5(payload.encode()).hexdigest()
    decoded = orjson.loads(payload)
    assert list(decoded) == list(user._fields)
    assert decoded["user_id"] == user.user_id
    assert decoded["dob"] == user.dob.isoformat()
    assert incoming_row(user) == row  # the same content always gives the same hash
    changed = incoming_row(user._replace(city="Elsewhere"))
    assert changed[-2] != content_hash
