"""The bundled randomuser-compatible API: determinism and the real API's quirks."""

from __future__ import annotations

from include.randomuser.normalize import InvalidUser, normalize_user
from local_stack.randomuser_api import (
    NATIONALITIES,
    FaultPlan,
    corrupt,
    generate,
    parse_nat,
    parse_results,
    select_fields,
)

ALL = sorted(NATIONALITIES)


def test_all_21_nationalities():
    assert len(NATIONALITIES) == 21


def test_deterministic_in_seed_page_results_nat():
    assert generate("s", 1, 50, ALL) == generate("s", 1, 50, ALL)
    assert generate("s", 1, 50, ALL) != generate("s", 2, 50, ALL)
    assert generate("s", 1, 50, ALL) != generate("t", 1, 50, ALL)


def test_results_and_nat_parsing_follow_the_real_api():
    assert parse_results("5000") == 5000
    assert parse_results("5001") == 1
    assert parse_results("abc") == 1
    assert parse_results(None) == 1
    assert parse_nat("us,gb") == ["US", "GB"]
    assert parse_nat("us,xx") == ALL  # one invalid code: the whole list is ignored


def test_quirks_and_normalisation():
    users = generate("quirks", 1, 2000, ALL)
    postcodes = {type(u["location"]["postcode"]) for u in users}
    assert postcodes == {int, str}
    assert all(isinstance(u["location"]["coordinates"]["latitude"], str) for u in users)
    assert any(u["id"]["value"] is None for u in users if u["nat"] in {"IR", "NZ", "TR", "UA"})
    assert any(not u["name"]["first"].isascii() for u in users)
    assert any(any(c.isalpha() for c in u["phone"]) for u in users if u["nat"] == "UA")
    for user in users:
        normalize_user(user)


def test_inc_exc_and_corruption():
    user = generate("s", 1, 1, ALL)[0]
    assert set(select_fields(user, "name,email", None)) == {"name", "email"}
    assert "picture" not in select_fields(user, None, "picture")
    users = generate("s", 1, 10, ALL)
    corrupt(users, 5)
    failures = 0
    for user in users[:5]:
        try:
            normalize_user(user)
        except InvalidUser:
            failures += 1
    assert failures == 5
    for user in users[5:]:
        normalize_user(user)


def test_a_fault_for_one_seed_spares_the_others():
    plan = FaultPlan()
    plan.set({"mode": "short", "count": 2, "seed": "a"})
    assert [plan.take("b"), plan.take("a"), plan.take(None), plan.take("a"), plan.take("a")] == [
        None, "short", None, "short", None]
