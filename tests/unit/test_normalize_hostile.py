"""Ingest against hostile input: each record named in the hardening issue, then generated damage
to real API records. A record is staged with every value exactly as the source gave it, or it is
rejected with a reason; nothing escapes `split_page`, nothing is lost."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.ingest.window import split_page
from include.randomuser.client import Page, parse_json, validate_response
from include.randomuser.normalize import InvalidUser, normalize_user

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "randomuser"
SAMPLE = [raw for path in sorted(FIXTURES.glob("*.json"))
          for raw in json.loads(path.read_text())["results"]]  # 321 real users

# Staged field -> where the API puts it.
TEXT_PATHS = {
    "gender": ("gender",), "title": ("name", "title"), "first_name": ("name", "first"),
    "last_name": ("name", "last"), "email": ("email",), "username": ("login", "username"),
    "phone": ("phone",), "cell": ("cell",), "street_name": ("location", "street", "name"),
    "city": ("location", "city"), "state": ("location", "state"),
    "country": ("location", "country"), "postcode": ("location", "postcode"),
    "timezone_offset": ("location", "timezone", "offset"),
    "timezone_description": ("location", "timezone", "description"), "nat": ("nat",),
    "id_name": ("id", "name"), "id_value": ("id", "value"),
    "picture_large": ("picture", "large"), "picture_medium": ("picture", "medium"),
    "picture_thumbnail": ("picture", "thumbnail"),
}
INT_PATHS = {"street_number": ("location", "street", "number"), "age": ("dob", "age")}
NUMBER_PATHS = {"latitude": ("location", "coordinates", "latitude"),
                "longitude": ("location", "coordinates", "longitude")}
TIME_PATHS = {"dob": ("dob", "date"), "registered_at": ("registered", "date")}
ALL_PATHS = [("login", "uuid"), *TEXT_PATHS.values(), *INT_PATHS.values(),
             *NUMBER_PATHS.values(), *TIME_PATHS.values(), ("login",), ("name",), ("location",),
             ("location", "street"), ("location", "coordinates"), ("dob",), ("id",), ("picture",)]


def _get(raw: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(raw, dict):
            return None
        raw = raw.get(key)
    return raw


def set_path(raw: dict, path: tuple[str, ...], value: Any, delete: bool = False) -> None:
    for key in path[:-1]:
        if not isinstance(raw.get(key), dict):
            return
        raw = raw[key]
    if delete:
        raw.pop(path[-1], None)
    else:
        raw[path[-1]] = value


def _page(results: list) -> Page:
    return Page(1, len(results), {"results": results, "info": {}}, b"{}", 1, 0.0, 0.0)


def _sample(index: int = 0) -> dict:
    return copy.deepcopy(SAMPLE[index % len(SAMPLE)])


NAMED_CASES = {
    "login null": lambda r: r.__setitem__("login", None),
    "login a string": lambda r: r.__setitem__("login", "bob"),
    "street number superscript two": lambda r: set_path(r, INT_PATHS["street_number"], "²"),
    "NUL in a name": lambda r: set_path(r, TEXT_PATHS["first_name"], "Jo\x00hn"),
    "lone surrogate in a city": lambda r: set_path(r, TEXT_PATHS["city"], "Ber\ud800lin"),
    "age 10^12": lambda r: set_path(r, INT_PATHS["age"], 10**12),
    "street number 2^40": lambda r: set_path(r, INT_PATHS["street_number"], 2**40),
    "date with microseconds": lambda r: set_path(r, TIME_PATHS["dob"],
                                                 "1990-01-02T03:04:05.123456Z"),
    "name 1001 characters": lambda r: set_path(r, TEXT_PATHS["last_name"], "x" * 1001),
    "coordinate 1e400": lambda r: set_path(r, NUMBER_PATHS["latitude"], "1e400"),
}


@pytest.mark.parametrize("case", sorted(NAMED_CASES))
def test_each_named_record_is_rejected_alone_and_the_window_keeps_the_rest(case):
    results = [_sample(i) for i in range(111)]
    NAMED_CASES[case](results[7])
    # Through the bytes, as the API would send them: a lone surrogate arrives as its escape.
    body = json.dumps({"results": results, "info": {"results": 111, "version": "1.4"}}).encode()
    payload = validate_response(200, {}, body, 111)
    split = split_page(Page(1, 111, payload, body, 1, 0.0, 0.0), set())
    assert len(split.users) == 110 and [r.position for r in split.rejects] == [7]
    assert split.rejects[0].reason


def test_a_lone_surrogate_escape_does_not_make_the_page_unreadable():
    assert parse_json(b'{"city": "Ber\\ud800lin"}') == {"city": "Ber\ud800lin"}
    with pytest.raises(ValueError):
        parse_json(b'{"city": ')


def _expected(field: str, source: Any) -> Any:
    """What a staged value must be, given the source's value: the value itself, or the same
    value in the column's representation."""
    if field in TEXT_PATHS:
        return str(source) if isinstance(source, int) else source
    if field in INT_PATHS:
        return int(source) if source is not None else None
    if field in NUMBER_PATHS:
        return float(source) if source is not None else None
    return None if source is None else datetime.fromisoformat(source.replace("Z", "+00:00"))


def assert_staged_as_given(raw: dict, user) -> None:
    assert uuid.UUID(user.user_id) == uuid.UUID(_get(raw, ("login", "uuid")))
    for paths in (TEXT_PATHS, INT_PATHS, NUMBER_PATHS, TIME_PATHS):
        for field, path in paths.items():
            assert getattr(user, field) == _expected(field, _get(raw, path)), field


hostile_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.text(alphabet=st.characters(codec=None), max_size=10),  # surrogates and controls
    st.text(min_size=995, max_size=1005, alphabet="é"),
    st.sampled_from(["", "²", "١٢", " 12", "12b", "-0", "1_000", "nan", "Infinity",
                     "2020-01-01", "2020-01-01T00:00:00", "2020-01-01T00:00:00.000001+00:00",
                     "00000000-0000-0000-0000-000000000000", "{uuid}"]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                        max_size=2))
damage = st.tuples(st.sampled_from(ALL_PATHS), hostile_values, st.booleans())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damages=st.lists(st.tuples(st.integers(0, 19), damage), max_size=12),
       extra=st.dictionaries(st.text(max_size=5), hostile_values, max_size=3))
def test_damaged_records_are_staged_as_given_or_rejected_and_none_is_lost(damages, extra):
    results = [_sample(i) for i in range(20)]
    for position, (path, value, delete) in damages:
        set_path(results[position], path, value, delete)
    results[0].update(extra)
    split = split_page(_page(results), set())
    assert len(split.users) + len(split.rejects) == len(results)
    assert sorted(split.positions + [r.position for r in split.rejects]) == list(range(20))
    for user, position in zip(split.users, split.positions, strict=True):
        assert_staged_as_given(results[position], user)
    for reject in split.rejects:
        assert reject.reason and reject.payload is results[reject.position]


def test_every_real_sample_record_is_staged_exactly_as_given():
    for raw in SAMPLE:
        assert_staged_as_given(raw, normalize_user(raw))


def test_a_record_that_is_not_an_object_is_rejected():
    with pytest.raises(InvalidUser, match="must be an object"):
        normalize_user(["a"])
