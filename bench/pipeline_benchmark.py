"""End-to-end benchmark through the real scheduler: users/s from ingest to Cassandra rows, and the
latency of each event from its outbox write to its row being readable in Cassandra; next to the
public tutorials' approach run on the same stack in the same run.

Three phases, one after the other:

1. **bulk**: `--users` users as ingest runs of `--window-users` each, triggered through the REST
   API over distinct past windows; the relay and stream DAGs run on their default schedules (asset
   events). Throughput = users landed / (last row's Cassandra write time - first trigger).
2. **scheduled**: the default schedule alone (a 500-user window every minute) for
   `--scheduled-windows` windows; the latency a user of the pipeline sees day to day.
3. **tutorial**: one API call per user, a JSON value per user sent by a fire-and-forget producer
   (acks=1, no delivery check), then the tutorials' Spark job (`bench/tutorial_stream_job.py`)
   appending to Cassandra; `--tutorial-users` users.

Then the Cassandra ceiling (`bench.cassandra_ceiling`, `--ceiling-seconds`, 0 skips it): what
Cassandra alone takes on the same stack, and the bulk phase's users/s as a ratio to it.

Latency per event = the row's landing time (see `_landed_rows`) - the outbox row's `created_at`
(the ingest transaction's start, so a little more than from its commit). Every landed row is also
checked to come from the user's own event: exactly once, nothing missing.

Run with the stack up (`make up SOURCE=local`); results are printed and written to
`bench/results/`:
    USERSTREAM_SOURCE=local .venv/bin/python -m bench.pipeline_benchmark --users 200000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from cassandra.concurrent import execute_concurrent_with_args
from confluent_kafka import Producer

from bench import cassandra_ceiling, cpu
from bench.stack_load import BackgroundSampler
from include import names
from include.provisioning import TopicSpec, ensure_topic
from local_stack.airflow_api import AirflowApi
from local_stack.cli import make_context
from local_stack.scratch import delete_scratch
from local_stack.services import Context, cassandra_session, kafka_client, pg_connect
from local_stack.settings import PROJECT_ROOT, Settings
from local_stack.stream_harness import spark_runtime, stream_job_login
from ops.pipeline_status import count_rows

INGEST, RELAY, STREAM = names.PIPELINE_DAG_IDS
TUTORIAL_JOB = PROJECT_ROOT / "bench" / "tutorial_stream_job.py"
TUTORIAL_CQL = PROJECT_ROOT / "bench" / "tutorial_baseline.cql"
RESULTS = PROJECT_ROOT / "bench" / "results"
PROBE_EVENTS = 200


@dataclass
class Landing:
    users: int
    seconds: float
    users_per_s: float
    latency_p50_s: float
    latency_p95_s: float
    latency_max_s: float
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    machine: dict[str, float] = field(default_factory=dict)
    # CPU per user landed, by service (bench.stack_load's lines), from trigger to the last row.
    cpu_us_per_user: dict[str, int] = field(default_factory=dict)


def _events_after(ctx: Context, first_id: int) -> list[tuple[int, str, datetime]]:
    with pg_connect(ctx, "userstream") as conn:
        return conn.execute(
            "SELECT id, user_id::text, created_at FROM staging.user_events WHERE id > %s "
            "ORDER BY id", (first_id,)).fetchall()


def _last_event_id(ctx: Context) -> int:
    with pg_connect(ctx, "userstream") as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM staging.user_events").fetchone()[0]


def _pending_after(ctx: Context, first_id: int) -> int:
    with pg_connect(ctx, "userstream") as conn:
        return conn.execute(
            "SELECT count(*) FROM staging.user_events WHERE id > %s AND published_at IS NULL "
            "AND failed_at IS NULL", (first_id,)).fetchone()[0]


def _landed_rows(session, user_ids: list[str]) -> dict[str, tuple[int, int]]:
    """user_id -> (event_id, landing time in µs) of the rows that exist. The landing time is the
    row's `ingestion_time` (when the job handed the row to the Cassandra writer). Versions of the
    job before the event-derived write timestamps (which start at 2^52 µs) stamped
    ingestion_time at the micro-batch's start and wrote with the wall clock: for their rows the
    WRITETIME is the landing time, so A/B runs measure alike."""
    statement = session.prepare(
        f"SELECT user_id, event_id, writetime(first_name), ingestion_time "
        f"FROM {names.CASSANDRA_KEYSPACE}.users WHERE user_id IN ?")
    chunks = [([uuid.UUID(u) for u in user_ids[i:i + 100]],)
              for i in range(0, len(user_ids), 100)]
    landed: dict[str, tuple[int, int]] = {}
    for ok, rows in execute_concurrent_with_args(session, statement, chunks, concurrency=16,
                                                 raise_on_first_error=True):
        assert ok
        for user_id, event_id, written_us, ingested in rows:
            ingested_us = int(ingested.replace(tzinfo=UTC).timestamp() * 1e6) if ingested else 0
            wall_clock_us = written_us if written_us and written_us < 2**52 else 0
            landed[str(user_id)] = (event_id, max(wall_clock_us, ingested_us))
    return landed


def _missing(events: list[tuple[int, str, datetime]], landed: dict[str, tuple[int, int]]
             ) -> int:
    return sum(1 for event_id, user_id, _ in events if landed.get(user_id, (0, 0))[0] < event_id)


def _wait_for_landing(ctx: Context, session, first_id: int, timeout_s: float
                      ) -> tuple[list[tuple[int, str, datetime]], dict[str, tuple[int, int]]]:
    """Polls a probe of PROBE_EVENTS newest and PROBE_EVENTS random events until it has landed,
    then reads every event's row once. Reading all rows on every poll would load Cassandra (the
    2 cores' busiest service) while the pipeline is still writing, and slow what it measures;
    throughput and latency come from the rows' write times, so when the full read runs does not
    change them. The ingest DAG is paused before this wait, so once nothing is pending the
    events are final and are read from PostgreSQL once."""
    deadline = time.monotonic() + timeout_s
    events: list[tuple[int, str, datetime]] | None = None
    while True:
        if events is None and _pending_after(ctx, first_id) == 0:
            events = _events_after(ctx, first_id)
        if events is not None:
            probe = events[-PROBE_EVENTS:] + random.sample(events, min(PROBE_EVENTS, len(events)))
            if not _missing(probe, _landed_rows(session, [user_id for _, user_id, _ in probe])):
                landed = _landed_rows(session, [user_id for _, user_id, _ in events])
                missing = _missing(events, landed)
                print(f"  {len(events) - missing:,} of {len(events):,} events landed", flush=True)
                if not missing:
                    return events, landed
            else:
                print(f"  the probe of {len(probe)} events has not all landed yet", flush=True)
        if time.monotonic() > deadline:
            raise SystemExit(f"events after id {first_id} did not all land in {timeout_s:.0f}s")
        time.sleep(10)


def _landing(events, landed, started: float) -> Landing:
    wrong = [user_id for event_id, user_id, _ in events if landed[user_id][0] != event_id]
    assert not wrong, f"rows not written from the user's own event: {wrong[:5]}"
    assert len({user_id for _, user_id, _ in events}) == len(events), "a user with two events"
    latencies = sorted(landed[user_id][1] / 1e6 - created.timestamp()
                       for _, user_id, created in events)
    last_write = max(written for _, written in landed.values() if written) / 1e6
    seconds = last_write - started
    return Landing(users=len(events), seconds=round(seconds, 1),
                   users_per_s=round(len(events) / seconds),
                   latency_p50_s=round(statistics.median(latencies), 1),
                   latency_p95_s=round(latencies[int(0.95 * (len(latencies) - 1))], 1),
                   latency_max_s=round(latencies[-1], 1))


def _run_summary(api: AirflowApi, since: datetime) -> dict[str, dict[str, Any]]:
    summary = {}
    for dag_id in (INGEST, RELAY, STREAM):
        runs = [r for r in api.runs(dag_id, order_by="-start_date")
                if r["start_date"] and datetime.fromisoformat(r["start_date"]) >= since]
        durations = [(datetime.fromisoformat(r["end_date"])
                      - datetime.fromisoformat(r["start_date"])).total_seconds()
                     for r in runs if r["end_date"]]
        summary[dag_id] = {
            "runs": len(runs), "states": sorted({r["state"] for r in runs}),
            "median_run_s": round(statistics.median(durations), 1) if durations else None}
    return summary


def bulk_phase(ctx: Context, api: AirflowApi, session, users: int, window_users: int,
               timeout_s: float) -> Landing:
    windows = -(-users // window_users)
    # After the DAG's start_date: earlier logical dates get no task instances.
    base = datetime(2026, 1, 2, tzinfo=UTC) + timedelta(minutes=random.randrange(300_000))
    first_id = _last_event_id(ctx)
    since = datetime.now(UTC)
    started, ticks = time.time(), cpu.machine_ticks()
    sampler = BackgroundSampler(ctx.settings).start()
    api.set_paused(INGEST, False)
    try:
        for i in range(windows):
            api.trigger(INGEST, logical_date=base + timedelta(minutes=i),
                        conf={"users": min(window_users, users - i * window_users)},
                        run_id=f"bench_{base:%Y%m%dT%H%M}_{i}")
        print(f"bulk: triggered {windows} ingest runs of {window_users:,} users", flush=True)
        deadline = time.monotonic() + timeout_s
        while any(r["state"] in {"queued", "running"} for r in api.runs(INGEST)
                  if r["dag_run_id"].startswith(f"bench_{base:%Y%m%dT%H%M}")):
            if time.monotonic() > deadline:
                raise SystemExit("bulk ingest runs did not finish")
            time.sleep(3)
        api.pause_when_idle(INGEST)
    finally:
        api.set_paused(INGEST, True)
    events, landed = _wait_for_landing(ctx, session, first_id, timeout_s)
    machine = cpu.machine_shares(ticks, cpu.machine_ticks())
    load = sampler.stop()
    api.settle(*names.PIPELINE_DAG_IDS)
    result = _landing(events, landed, started)
    result.runs = _run_summary(api, since)
    result.machine = machine
    result.cpu_us_per_user = {label: round(seconds * 1e6 / len(events))
                              for label, seconds in load.most_common()}
    result.cpu_us_per_user["total"] = round(sum(load.values()) * 1e6 / len(events))
    return result


def scheduled_phase(ctx: Context, api: AirflowApi, session, windows: int,
                    timeout_s: float) -> Landing:
    first_id = _last_event_id(ctx)
    since = datetime.now(UTC)
    started, ticks = time.time(), cpu.machine_ticks()
    api.set_paused(INGEST, False)
    try:
        deadline = time.monotonic() + 120 + 60 * windows
        while sum(1 for r in api.runs(INGEST, order_by="-start_date")
                  if r["run_type"] == "scheduled" and r["state"] == "success"
                  and datetime.fromisoformat(r["start_date"]) >= since) < windows:
            if time.monotonic() > deadline:
                raise SystemExit("the scheduler ran too few ingest windows")
            time.sleep(5)
        api.pause_when_idle(INGEST)
    finally:
        api.set_paused(INGEST, True)
    print(f"scheduled: {windows} windows ingested", flush=True)
    events, landed = _wait_for_landing(ctx, session, first_id, timeout_s)
    machine = cpu.machine_shares(ticks, cpu.machine_ticks())
    api.settle(*names.PIPELINE_DAG_IDS)
    result = _landing(events, landed, started)
    result.runs = _run_summary(api, since)
    result.machine = machine
    return result


def _tutorial_record(result: dict[str, Any]) -> dict[str, str]:
    """The tutorials' format_data: a fresh random id per record, the address glued into one
    string."""
    location = result["location"]
    return {"id": str(uuid.uuid4()), "first_name": result["name"]["first"],
            "last_name": result["name"]["last"], "gender": result["gender"],
            "address": (f"{location['street']['number']} {location['street']['name']}, "
                        f"{location['city']}, {location['state']}, {location['country']}"),
            "post_code": str(location["postcode"]), "email": result["email"],
            "username": result["login"]["username"], "dob": result["dob"]["date"],
            "registered_date": result["registered"]["date"], "phone": result["phone"],
            "picture": result["picture"]["medium"]}


def tutorial_phase(ctx: Context, session, users: int) -> dict[str, Any]:
    s = ctx.settings
    topic, table = f"bench-tutorial-{uuid.uuid4().hex[:6]}", "created_users"
    keyspace = "bench_tutorial"
    cql = "\n".join(line for line in TUTORIAL_CQL.read_text().splitlines()
                    if not line.lstrip().startswith("--"))
    for statement in filter(str.strip, cql.split(";")):
        session.execute(statement)
    session.execute(f"TRUNCATE {keyspace}.{table}")
    ensure_topic(kafka_client(s), TopicSpec.from_env(topic))
    producer = Producer({**kafka_client(s), "acks": "1"})
    http = requests.Session()
    started = time.time()
    for _ in range(users):
        result = http.get(f"{s.randomuser_url}/api/", timeout=10).json()["results"][0]
        try:
            producer.produce(topic, json.dumps(_tutorial_record(result)).encode())
        except BufferError:
            producer.poll(1)
        producer.poll(0)
    producer.flush(30)  # what a process exit does; delivery is never checked
    produced_s = time.time() - started
    print(f"tutorial: {users:,} API calls and sends in {produced_s:.1f}s", flush=True)
    runtime = spark_runtime(s)
    checkpoint = s.state_dir / "bench" / f"tutorial-{topic}"
    command = [runtime.spark_submit, "--master", "local[2]", "--jars", runtime.jars,
               "--conf", "spark.ui.enabled=false", "--conf", "spark.driver.memory=1g",
               str(TUTORIAL_JOB), "--bootstrap-servers", s.kafka_bootstrap, "--topic", topic,
               "--cassandra-host", s.host, "--cassandra-port", str(s.cassandra_port),
               "--keyspace", keyspace, "--table", table, "--checkpoint", str(checkpoint)]
    log = s.state_dir / "logs" / "bench-tutorial-spark.log"
    with log.open("w") as out:
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=True,
                       env={**os.environ, **runtime.env(), **stream_job_login(s)}, timeout=900)
    seconds = time.time() - started
    landed, _ = count_rows(session, f"{keyspace}.{table}", "id", budget_s=120)
    delete_scratch(ctx, [topic])
    return {"users": users, "landed": landed, "lost": users - landed,
            "api_and_send_s": round(produced_s, 1), "seconds": round(seconds, 1),
            "users_per_s": round(landed / seconds),
            "api_calls_per_s": round(users / produced_s)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--window-users", type=int, default=20_000)
    parser.add_argument("--scheduled-windows", type=int, default=3,
                        help="0 skips the scheduled phase")
    parser.add_argument("--tutorial-users", type=int, default=5_000,
                        help="0 skips the tutorials' phase")
    parser.add_argument("--ceiling-seconds", type=float, default=30,
                        help="0 skips the Cassandra ceiling")
    parser.add_argument("--timeout-s", type=float, default=1800)
    args = parser.parse_args()
    ctx, _ = make_context(Settings.from_env())
    os.environ.update({k: v for k, v in ctx.env.items() if k.startswith(("AIRFLOW", "USERSTREAM"))})
    api = AirflowApi(ctx)
    for dag_id in (INGEST, RELAY, STREAM):
        api.wait_for_dag(dag_id)
        api.set_paused(dag_id, dag_id == INGEST)
    cluster, session = cassandra_session(ctx.settings)
    try:
        api.settle(*names.PIPELINE_DAG_IDS)
        bulk = bulk_phase(ctx, api, session, args.users, args.window_users, args.timeout_s)
        print(f"bulk: {json.dumps(asdict(bulk))}", flush=True)
        scheduled = (scheduled_phase(ctx, api, session, args.scheduled_windows, args.timeout_s)
                     if args.scheduled_windows else None)
        print(f"scheduled: {json.dumps(asdict(scheduled) if scheduled else None)}", flush=True)
        tutorial = (tutorial_phase(ctx, session, args.tutorial_users)
                    if args.tutorial_users else None)
        print(f"tutorial: {json.dumps(tutorial)}", flush=True)
    finally:
        for dag_id in (INGEST, RELAY, STREAM):
            api.set_paused(dag_id, True)
        cluster.shutdown()
    ceiling = None
    if args.ceiling_seconds:
        try:
            ceiling = asdict(cassandra_ceiling.measure(ctx.settings, args.ceiling_seconds))
        except cassandra_ceiling.LatteMissing as missing:
            print(f"no Cassandra ceiling: {missing}", flush=True)
    ratio_to_ceiling = round(bulk.users_per_s / ceiling["rows_per_s"], 3) if ceiling else None
    if ceiling:
        print(f"bulk {bulk.users_per_s:,} users/s; Cassandra ceiling {ceiling['rows_per_s']:,} "
              f"rows/s; ratio {ratio_to_ceiling:.2f}", flush=True)
    report = {"bulk": asdict(bulk), "scheduled": asdict(scheduled) if scheduled else None,
              "cassandra_ceiling": ceiling, "ratio_to_ceiling": ratio_to_ceiling,
              "tutorial": tutorial,
              "ratio_to_tutorial": (round(bulk.users_per_s / max(tutorial["users_per_s"], 1), 1)
                                    if tutorial else None),
              "args": vars(args), "finished": datetime.now(UTC).isoformat()}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"pipeline-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
