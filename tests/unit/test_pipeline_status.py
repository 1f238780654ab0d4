"""The status screen's pure parts: checkpoint offsets, lag, and rendering with failed probes."""

from __future__ import annotations

import json

from ops.pipeline_status import (
    PipelineStatus,
    Probe,
    checkpoint_ahead,
    committed_offsets,
    lag,
    probe,
    render,
)


def _checkpoint(tmp_path, committed: list[int], offsets: dict[int, dict]):
    (tmp_path / "commits").mkdir()
    (tmp_path / "offsets").mkdir()
    for batch in committed:
        (tmp_path / "commits" / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}')
    for batch, source in offsets.items():
        (tmp_path / "offsets" / str(batch)).write_text(
            'v1\n{"batchWatermarkMs":0}\n' + json.dumps({"users_created": source}))
    return tmp_path


def test_committed_offsets_come_from_the_last_committed_batch_not_the_last_planned(tmp_path):
    checkpoint = _checkpoint(tmp_path, [0, 1], {0: {"0": 5}, 1: {"0": 10, "1": 7},
                                                2: {"0": 99, "1": 99}})
    assert committed_offsets(checkpoint) == {0: 10, 1: 7}


def test_a_checkpoint_without_commits_has_no_offsets(tmp_path):
    assert committed_offsets(tmp_path / "never-ran") == {}


def test_lag_counts_uncommitted_messages_per_partition():
    assert lag({0: 10, 1: 7, 2: 3}, {0: 10, 1: 2}) == {0: 0, 1: 5, 2: 3}


def test_render_shows_every_hop_and_names_what_is_unavailable():
    status = PipelineStatus(
        staged_users=Probe(1500),
        outbox=Probe({"pending": 20, "failed": 1, "published": 1480}),
        kafka_end_offsets=Probe({0: 800, 1: 700}),
        committed_offsets=Probe({0: 800, 1: 680}),
        cassandra_rows=probe(lambda: (_ for _ in ()).throw(ConnectionError("no host"))),
        last_runs=Probe({"ingest_users": {"state": "success", "run_type": "scheduled",
                                          "end_date": "2026-11-21T10:00:05Z"}}))
    screen = render(status)
    assert "users staged 1,500" in screen
    assert "pending 20, failed 1, published 1,480" in screen
    assert "lag 20 (p0=0 p1=20)" in screen
    assert "cassandra unavailable (ConnectionError: no host)" in screen
    assert "last run: success (scheduled, 2026-11-21 10:00:05)" in screen
    assert "last run: none" in screen  # relay and stream have not run


def test_a_checkpoint_past_the_topics_end_is_called_out():
    status = PipelineStatus(
        staged_users=Probe(1000), outbox=Probe({"pending": 0, "failed": 0, "published": 1000}),
        kafka_end_offsets=Probe({0: 345, 1: 336}),
        committed_offsets=Probe({0: 1_317_772, 1: 336}),
        cassandra_rows=Probe({"users": 0, "dead_letters": 0, "exact": True}),
        last_runs=Probe({}))
    assert checkpoint_ahead({0: 345, 1: 336}, {0: 1_317_772, 1: 336}) == [0]
    assert "checkpoint is past the topic's end on p0:" in render(status)
    status.committed_offsets = Probe({0: 345, 1: 300})
    assert "checkpoint is past" not in render(status)
