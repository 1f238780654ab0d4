"""The pipeline page's pure parts: users per minute from the hops' asset events, the lag walked
back through the hour, and HTML that shows hostile text as text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ops.pipeline_page import chart, render_page
from ops.pipeline_view import lag_history, per_minute

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_per_minute_buckets_each_hops_users_and_ignores_the_rest():
    events = [
        ("userstream.staged_user_events", NOW - timedelta(minutes=1, seconds=30),
         {"new_events": 500}),
        ("userstream.users_created_topic", NOW - timedelta(seconds=10), {"events_sent": 480}),
        ("userstream.cassandra_users", NOW - timedelta(seconds=5),
         {"rows_written": 470, "dead_letters": 2}),
        ("userstream.cassandra_users", NOW - timedelta(minutes=61), {"rows_written": 9}),
        ("userstream.pruned_staging", NOW - timedelta(seconds=5), {"events_deleted": 7}),
        # A test's scratch topic and keyspace are not the pipeline's.
        ("userstream.users_created_topic", NOW - timedelta(seconds=9),
         {"topic": "scratch", "events_sent": 5}),
        ("userstream.cassandra_users", NOW - timedelta(seconds=9),
         {"topic": "users_created", "keyspace": "scratch", "rows_written": 5}),
    ]
    series = per_minute(events, NOW, minutes=60)
    assert series["staged"][-2] == 500 and sum(series["staged"]) == 500
    assert series["published"][-1] == 480 and series["landed"][-1] == 472
    assert sum(series["landed"]) == 472


def test_lag_is_walked_back_from_the_current_one():
    series = {"staged": [0, 0, 0], "published": [100, 50, 0], "landed": [0, 100, 40]}
    # 10 behind now; a minute before, 40 more (none published, 40 landed); before that 50 more
    # (50 published, 100 landed).
    assert lag_history(series, 10) == [100, 50, 10]
    assert lag_history(series, None) is None


def _data(**overrides):
    ok = {"value": None, "error": None}
    status = {name: dict(ok) for name in ("staged_users", "outbox", "kafka_end_offsets",
                                          "committed_offsets", "cassandra_rows", "last_runs")}
    status["outbox"]["value"] = {"pending": 1, "failed": 2, "published": 3_000}
    status["kafka_end_offsets"]["error"] = "KafkaException: broker down"
    data = {"generated_at": NOW.isoformat(), "status": status, "lag": None,
            "history": {"value": {"staged": [1, 2], "published": [0, 2], "landed": [0, 1],
                                  "lag": None}, "error": None},
            "latest_messages": {"value": [], "error": None},
            "dead_letters": {"value": [], "error": None},
            "quarantined": {"value": [], "error": None},
            "alerts": {"value": [], "error": None}}
    data.update(overrides)
    return data


def test_hostile_text_is_shown_as_text_and_failed_parts_say_so():
    attack = "<script>alert(1)</script>"
    page = render_page(_data(quarantined={"value": [
        {"hop": "ingest", "at": NOW, "key": attack, "reason": f"'first_name' {attack}"}],
        "error": None}))
    assert attack not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<span id="outbox-published">3,000</span>' in page
    assert "unavailable (KafkaException: broker down)" in page


def test_the_chart_draws_a_line_per_known_series():
    svg = chart({"staged": [0, 5, 10], "published": [0, 0, 0], "landed": [1, 2, 3],
                 "lag": None})
    assert svg.count("<polyline") == 3 and "staged (max 10)" in svg
