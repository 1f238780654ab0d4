"""The normaliser on every record of the real API samples (tests/fixtures/randomuser/)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from include.randomuser.normalize import InvalidUser, normalize_user

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "randomuser"
SAMPLES = sorted(FIXTURES.glob("*.json"))


def _results(path: Path) -> list[dict]:
    return json.loads(path.read_text())["results"]


def _by_uuid(user_id: str) -> tuple[dict, object]:
    for path in SAMPLES:
        for raw in _results(path):
            if raw["login"]["uuid"] == user_id:
                return raw, normalize_user(raw)
    raise LookupError(user_id)


def test_samples_are_the_real_ones():
    counts = {path.name: len(_results(path)) for path in SAMPLES}
    assert sorted(counts.values()) == [10, 111, 200]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name.split("__")[1])
def test_every_sample_record_normalises(path):
    users = [normalize_user(raw) for raw in _results(path)]
    assert len({u.user_id for u in users}) == len(users)
    for raw, user in zip(_results(path), users, strict=True):
        assert user.user_id == raw["login"]["uuid"]
        assert user.postcode == str(raw["location"]["postcode"])
        assert user.latitude == float(raw["location"]["coordinates"]["latitude"])
        assert user.first_name == raw["name"]["first"]
        assert user.dob.tzinfo is not None


def test_spot_check_an_irish_user():
    _, user = _by_uuid("b7ee0a96-eba6-4482-a197-daa3c333e8d9")
    assert (user.first_name, user.last_name, user.title) == ("Miguel", "Jordan", "Mr")
    assert user.postcode == "48246"
    assert (user.latitude, user.longitude) == (0.2090, -6.7355)
    assert user.street_number == 9318 and user.street_name == "Albert Road"
    assert user.dob == datetime(1982, 10, 25, 8, 18, 55, 170000, tzinfo=UTC)
    assert user.age == 42
    assert (user.id_name, user.id_value) == ("PPS", "6665728T")
    assert user.timezone_offset == "+9:30"
    assert user.nat == "IE"


def test_quirks_of_the_v14_sample():
    raws = _results(FIXTURES / "codeacademyuz__randomuser_me_project__randomusers.json")
    users = {raw["login"]["uuid"]: (raw, normalize_user(raw)) for raw in raws}
    string_postcodes = [u for r, u in users.values() if isinstance(r["location"]["postcode"], str)]
    assert string_postcodes, "the sample has string postcodes (CA, GB, NL, ...)"
    for raw, user in users.values():
        if raw["nat"] in {"IR", "NZ", "TR", "UA"}:
            assert user.id_value is None
        if raw["nat"] == "NO" and isinstance(raw["location"]["postcode"], str):
            assert user.postcode == raw["location"]["postcode"]  # leading zero kept
    non_ascii = [u for _, u in users.values() if not (u.first_name or "").isascii()]
    assert non_ascii, "non-ASCII names are kept intact"
    assert {r["nat"] for r, _ in users.values()} >= {"IR", "TR", "UA", "RS", "DE"}


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda r: r["login"].__setitem__("uuid", "nope"), "login.uuid"),
    (lambda r: r.pop("login"), "missing 'login'"),
    (lambda r: r["location"]["coordinates"].__setitem__("latitude", "north"), "latitude"),
    (lambda r: r["location"]["coordinates"].__setitem__("latitude", "91.5"), "out of range"),
    (lambda r: r["dob"].__setitem__("date", "yesterday"), "dob.date"),
    (lambda r: r.__setitem__("email", "no-at-sign"), "email"),
    (lambda r: r["location"]["street"].__setitem__("number", "12b"), "street.number"),
    (lambda r: r.__setitem__("name", ["not", "an", "object"]), "'name' must be an object"),
])
def test_invalid_records_raise_with_a_reason(mutate, reason):
    raw, _ = _by_uuid("b7ee0a96-eba6-4482-a197-daa3c333e8d9")
    broken = json.loads(json.dumps(raw))
    mutate(broken)
    with pytest.raises(InvalidUser, match=reason):
        normalize_user(broken)
