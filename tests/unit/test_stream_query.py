"""The long-lived stream query's records: heartbeat health, the batch ledger the landing check
balances, and the relay's first offsets that say which batches read its messages."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from include.assets import USERS_TOPIC
from include.relay.outbox import Deliveries, RelayStats
from include.stream import query
from include.stream.job import StreamJobConfig, spark_conf
from include.stream.supervision import uses_long_lived_query
from include.stream.verify import expected_first_offsets, wait_until
from tests.stream_job_module import load_stream_job

NOW = 1_000_000.0


def _heartbeat(state: str = query.RUNNING, age_s: float = 1.0, **extra) -> dict:
    return {"state": state, "written_at": NOW - age_s, "started_at": NOW - 600,
            "driver_pid": 4242, "batches": 3, "messages": 1500, "reason": "ended", **extra}


def test_a_fresh_running_heartbeat_is_healthy_and_anything_else_is_not():
    assert query.query_health(_heartbeat(), now=NOW) == (
        True, "the query runs (driver pid 4242, up 600s, 3 batch(es), 1,500 message(s))")
    healthy, detail = query.query_health(None, now=NOW)
    assert not healthy and "no heartbeat" in detail
    healthy, detail = query.query_health(_heartbeat(age_s=query.HEARTBEAT_STALE_S + 1), now=NOW)
    assert not healthy and "61s old" in detail and "4242" in detail
    healthy, detail = query.query_health(
        _heartbeat(query.STOPPED, reason="stop requested"), now=NOW)
    assert not healthy and "stop requested" in detail


def test_a_query_being_submitted_counts_as_running_for_a_while():
    starting = {"state": query.STARTING, "written_at": NOW - 10}
    assert query.query_health(starting, now=NOW) == (
        True, "the query is starting (submitted 10s ago)")
    healthy, detail = query.query_health(starting, now=NOW + query.STARTING_GRACE_S)
    assert not healthy and "never ran" in detail


def test_only_a_stop_on_request_lets_a_new_supervisor_run_queue_behind_the_ending_one():
    assert query.stopped_on_request(_heartbeat(query.STOPPED, reason=query.STOP_REQUESTED))
    assert not query.stopped_on_request(_heartbeat(query.STOPPED, reason="failed: killed"))
    assert not query.stopped_on_request(_heartbeat())
    assert not query.stopped_on_request(None)


def test_heartbeat_and_stop_request_round_trip(tmp_path):
    folder = query.query_dir(tmp_path / "stream_users")
    assert folder.name == "stream_users.query"
    assert query.read_heartbeat(folder) is None
    query.write_json(query.heartbeat_path(folder), _heartbeat())
    assert query.read_heartbeat(folder)["driver_pid"] == 4242
    assert [p.name for p in folder.iterdir()] == ["heartbeat.json"]  # no partial file left
    query.request_stop(folder)
    assert query.stop_path(folder).exists()


def _entry(batch_id: int, offsets: dict, messages: int = 10, rows: int = 10, dead: int = 0,
           superseded: int = 0) -> dict:
    return {"batch_id": batch_id, "topic": "users_created", "offsets": offsets,
            "messages": messages, "rows_written": rows, "dead_letters": dead,
            "superseded": superseded,
            "dead_letter_examples": [{"offset": batch_id, "reason": "bad"}] * dead}


def test_the_ledger_is_read_oldest_first_and_pruned(tmp_path, monkeypatch):
    monkeypatch.setattr(query, "LEDGER_KEEP", 200)
    for batch_id in (3, 1, 2):
        query.write_ledger_entry(tmp_path, _entry(batch_id, {"0": [0, 9]}))
    assert [e["batch_id"] for e in query.read_ledger(tmp_path)] == [1, 2, 3]
    query.write_ledger_entry(tmp_path, _entry(300, {"0": [10, 19]}))
    assert [e["batch_id"] for e in query.read_ledger(tmp_path)] == [300]


def test_the_batches_that_read_the_relays_offsets_are_found_and_balanced():
    entries = [_entry(1, {"0": [0, 49], "1": [0, 9]}), _entry(2, {"0": [50, 99]}),
               _entry(3, {"1": [10, 19]}, messages=10, rows=7, dead=2, superseded=1),
               _entry(4, {"2": [0, 4]}, messages=5, rows=4)]
    ranges = query.offset_ranges({0: 60}, {0: 120, 1: 15})
    assert ranges == {0: (60, 120), 1: (0, 15)}
    reading = query.entries_reading(entries, ranges)
    assert [e["batch_id"] for e in reading] == [1, 2, 3]
    assert query.unbalanced_entries(reading) == []
    totals = query.ledger_totals(reading)
    assert (totals["messages"], totals["rows_written"], totals["dead_letters"],
            totals["superseded"]) == (30, 27, 2, 1)
    assert totals["end_offsets"] == {"users_created:0": 99, "users_created:1": 19}
    assert totals["batch_ids"] == [1, 2, 3] and len(totals["dead_letter_examples"]) == 2
    assert [e["batch_id"] for e in query.unbalanced_entries(entries)] == [4]


def _claim_in_a_process(folder: Path, batch_ids: list[int], worker: int) -> None:
    claimed = query.claim_dead_letter_alerts(folder / "query", [_entry(b, {}, dead=1)
                                                                for b in batch_ids])
    (folder / f"worker-{worker}").write_text(" ".join(str(e["batch_id"]) for e in claimed))


def test_concurrent_landing_checks_claim_each_batchs_dead_letters_once(tmp_path):
    fork = multiprocessing.get_context("fork")
    workers = [fork.Process(target=_claim_in_a_process, args=(tmp_path, list(range(2000)), n))
               for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    found = [int(b) for n in range(4) for b in (tmp_path / f"worker-{n}").read_text().split()]
    assert sorted(found) == list(range(2000))


def test_a_released_claim_is_claimed_again_and_claims_are_pruned_with_the_ledger(
        tmp_path, monkeypatch):
    monkeypatch.setattr(query, "LEDGER_KEEP", 200)
    entries = [_entry(1, {}, dead=2), _entry(2, {}), _entry(3, {}, dead=1)]
    claimed = query.claim_dead_letter_alerts(tmp_path, entries)
    assert [e["batch_id"] for e in claimed] == [1, 3]  # a batch without dead letters: no claim
    query.release_dead_letter_alerts(tmp_path, claimed[:1])
    assert [e["batch_id"] for e in query.claim_dead_letter_alerts(tmp_path, entries)] == [1]
    query.write_ledger_entry(tmp_path, _entry(300, {"0": [10, 19]}))
    assert not list(query.alerted_dir(tmp_path).iterdir())


def test_two_stream_runs_that_share_a_micro_batch_alert_its_dead_letters_once(
        tmp_path, monkeypatch):
    """Both runs' landing checks find the shared batch; the alert names its dead letters once,
    and the second run alerts only the batch that is its own."""
    from include.stream import operator
    from include.stream.verify import LandedUsersSensor

    sent = []
    monkeypatch.setattr(operator, "pipeline_query_dir", lambda: tmp_path)
    monkeypatch.setattr(operator, "alert_new_dead_letters",
                        lambda report, context: sent.append(report["dead_letters"]))
    shared, later = _entry(7, {"0": [0, 99]}, dead=2), _entry(8, {"0": [100, 199]}, dead=1)
    for entries in ([shared], [shared, later]):
        sensor = LandedUsersSensor(task_id="verify_landed", table="userstream.users")
        sensor.ledger_entries = entries
        summary = query.ledger_totals(entries)
        assert sensor._verified(summary, context={}).is_done
    assert sent == [2, 1]


@settings(max_examples=300, deadline=None)
@given(batches=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 50), st.integers(0, 20)),
                        max_size=8),
       wanted=st.dictionaries(st.integers(0, 3),
                              st.tuples(st.integers(0, 60), st.integers(0, 30)), max_size=3))
def test_a_batch_is_found_exactly_when_it_read_one_of_the_offsets(batches, wanted):
    entries = [_entry(i, {str(p): [first, first + n]}) for i, (p, first, n) in enumerate(batches)]
    ranges = {p: (first, first + n) for p, (first, n) in wanted.items()}
    found = {e["batch_id"] for e in query.entries_reading(entries, ranges)}
    expected = {i for i, (p, first, n) in enumerate(batches) if p in ranges
                and set(range(first, first + n + 1)) & set(range(ranges[p][0], ranges[p][1] + 1))}
    assert found == expected


def test_the_relay_reports_the_first_offset_it_wrote_per_partition():
    deliveries = Deliveries()
    for event_id, partition, offset in [(1, 0, 7), (2, 1, 3), (3, 0, 5), (4, 0, 9)]:
        deliveries.report(event_id, None, SimpleNamespace(partition=lambda p=partition: p,
                                                          offset=lambda o=offset: o))
    assert deliveries.first_offsets == {0: 5, 1: 3} and deliveries.offsets == {0: 9, 1: 3}
    stats = RelayStats(topic="users_created", partition_first_offsets={1: 3, 0: 5})
    assert stats.as_extra()["partition_first_offsets"] == {"0": 5, "1": 3}


def test_the_landing_check_takes_the_lowest_first_offset_of_the_relay_runs_on_its_topic():
    extras = [{"topic": "users_created", "partition_first_offsets": {"0": 50, "1": 7}},
              {"topic": "users_created", "partition_first_offsets": {"0": 20}},
              {"topic": "scratch", "partition_first_offsets": {"0": 1}},
              {"partition_last_offsets": {"0": 3}}]  # an older relay run: no first offsets
    context = {"params": {}, "triggering_asset_events": {
        USERS_TOPIC: [SimpleNamespace(extra=extra) for extra in extras]}}
    assert expected_first_offsets(context, "users_created") == {0: 20, 1: 7}


def test_only_the_pipelines_topic_and_keyspace_use_the_long_lived_query():
    assert uses_long_lived_query("users_created", "userstream")
    assert not uses_long_lived_query("scratch_topic", "userstream")
    assert not uses_long_lived_query("users_created", "replay_keyspace")


def test_the_long_lived_query_runs_c2_and_passes_its_folder_and_stall_limit(tmp_path):
    assert "-XX:TieredStopAtLevel=1" in spark_conf({})["spark.driver.extraJavaOptions"]
    long_lived = spark_conf({}, long_lived=True)["spark.driver.extraJavaOptions"]
    assert "TieredStopAtLevel" not in long_lived and "UseParallelGC" in long_lived
    # The default cadence's micro-batches come a minute apart: the query keeps its session.
    cadence_ms = 60_000
    keep_alive = "spark.cassandra.connection.keepAliveMS"
    assert int(spark_conf({}, long_lived=True)[keep_alive]) > 5 * cadence_ms
    config = StreamJobConfig(bootstrap_servers="b:9092", registry_url="http://r",
                             cassandra_host="c", cassandra_port=9042,
                             checkpoint=tmp_path / "cp", trigger="processing-time",
                             query_dir=tmp_path / "cp.query", stall_after_s=120)
    args = load_stream_job().parse_args(config.arguments())
    assert args.query_dir == str(tmp_path / "cp.query") and args.stall_after_s == 120
    assert args.stop_when_idle_s == 0 and args.max_run_s == 0



def test_wait_until_answers_as_soon_as_the_condition_holds_or_at_the_deadline():
    """The landing check's poke waits for a commit that comes a little later instead of giving
    its slot back at once; one that does not come within the wait is a "not yet"."""
    answers = iter([False, False, True])
    started = time.monotonic()
    assert wait_until(lambda: next(answers), wait_s=5, every_s=0.1)
    assert 0.2 <= time.monotonic() - started < 1

    started = time.monotonic()
    assert not wait_until(lambda: False, wait_s=0.5, every_s=0.1)
    assert 0.5 <= time.monotonic() - started < 1.5
