"""The record contract: derived from the .avsc, every limit holds at its edge and fails one step
beyond it, and the one-pass check agrees with the field-by-field one on generated records."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.record_contract import (
    INT_RANGE,
    TIMESTAMP_MS_RANGE,
    USER_CONTRACT,
    ContractViolation,
    RecordContract,
    load_schema,
)
from include.relay.avro import event_record
from local_stack.stream_harness import synthetic_user

LIMIT = USER_CONTRACT.max_string_length


def valid_record(index: int = 1) -> dict:
    payload = synthetic_user(random.Random(index), index)
    return event_record(index, payload, "h" * 32, 1_764_000_000_000)


def test_every_avsc_field_has_a_rule_of_its_type():
    schema = load_schema()
    rules = {rule.name: rule for rule in USER_CONTRACT.fields}
    assert list(rules) == [f["name"] for f in schema["fields"]]
    assert rules["age"].value_range == INT_RANGE and rules["age"].nullable
    assert rules["user_id"].kind == "uuid" and not rules["user_id"].nullable
    assert rules["event_id"].value_range == (1, 2**62)
    assert rules["dob"].kind == "timestamp-millis"


def test_a_schema_without_limits_is_refused():
    with pytest.raises(ValueError, match=r"userstream\.limits"):
        RecordContract.from_schema({"fields": []})


@pytest.mark.parametrize(("field", "at_limit", "beyond", "reason"), [
    ("first_name", "x" * LIMIT, "x" * (LIMIT + 1), "characters long"),
    ("city", "Zürich", "Zü\x00rich", "U+0000"),
    ("city", "Zürich", "Zü\x1frich", "U+001F"),
    ("city", "Zürich", "Zü\x7frich", "U+007F"),
    ("city", "Zürich", "Zü\ud800rich", "U+D800"),
    ("street_name", "Rue d'Ö", "Rue\td'Ö", "U+0009"),
    ("age", INT_RANGE[1], INT_RANGE[1] + 1, "outside"),
    ("age", INT_RANGE[0], INT_RANGE[0] - 1, "outside"),
    ("street_number", 2**31 - 1, 2**40, "outside"),
    ("age", 12, 10**12, "outside"),
    ("event_id", 2**62, 2**62 + 1, "outside"),
    ("event_id", 1, 0, "outside"),
    ("age", 0, True, "integer"),
    ("latitude", 1.7976931348623157e308, float("inf"), "finite"),
    ("latitude", -0.0, float("nan"), "finite"),
    ("dob", datetime(1900, 1, 1, tzinfo=UTC), datetime(2000, 1, 1), "time zone"),
    ("dob", datetime(1900, 1, 1, tzinfo=UTC), datetime(1899, 12, 31, 23, 59, 59, 999000, UTC),
     "years 1900..9999"),
    ("dob", datetime(2000, 1, 1, 0, 0, 0, 999000, tzinfo=UTC),
     datetime(2000, 1, 1, 0, 0, 0, 999001, tzinfo=UTC), "sub-millisecond"),
    ("event_time", TIMESTAMP_MS_RANGE[1], TIMESTAMP_MS_RANGE[1] + 1, "years 1900..9999"),
    ("user_id", "5F0C8A0E-3C1D-4A8E-9A63-0F4C1E2D3B4A", "5f0c8a0e3c1d4a8e9a630f4c1e2d3b4a",
     "hyphenated"),
    ("user_id", "5f0c8a0e-3c1d-4a8e-9a63-0f4c1e2d3b4a", None, "required"),
    ("postcode", "0958", 958, "text"),
])
def test_each_limit_holds_at_its_edge_and_fails_beyond(field, at_limit, beyond, reason):
    record = valid_record()
    assert USER_CONTRACT.violation({**record, field: at_limit}) is None
    problem = USER_CONTRACT.violation({**record, field: beyond})
    assert problem is not None and field in problem and reason in problem
    with pytest.raises(ContractViolation, match=re.escape(reason)):
        USER_CONTRACT.check({**record, field: beyond})


def test_the_forbidden_characters_are_a_pattern_python_and_java_read_alike():
    # The Spark job hands the same text to Java's regex engine: only \uXXXX escapes and ranges.
    pattern = json.loads(json.dumps(USER_CONTRACT.forbidden_characters))
    assert pattern == "[\\u0000-\\u001f\\u007f\\ud800-\\udfff]"


values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
    st.text(min_size=LIMIT - 2, max_size=LIMIT + 2, alphabet="ab"),
    st.datetimes(timezones=st.just(UTC)), st.datetimes(), st.lists(st.integers(), max_size=2),
    st.sampled_from(["5f0c8a0e-3c1d-4a8e-9a63-0f4c1e2d3b4a", "not-a-uuid", "\x00", "\ud800"]))


@settings(max_examples=400, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(USER_CONTRACT.names), values, max_size=4),
       index=st.integers(1, 10_000))
def test_the_one_pass_check_agrees_with_the_field_by_field_check(changes, index):
    record = {**valid_record(index), **changes}
    assert USER_CONTRACT.violation(record) == USER_CONTRACT.field_violation(record)
