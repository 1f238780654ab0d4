"""Stream benchmark: rows/s from Kafka into Cassandra through the stream job (one spark-submit run
over N Confluent-framed records), its fixed start-up cost, and a raw baseline measured in the same
run: the same rows written by a concurrent cassandra-driver writer (prepared INSERTs with many
requests in flight) into a table of the same shape.

Run with the stack up (`make up SOURCE=local`):
    .venv/bin/python -m bench.stream_benchmark --records 200000

With `--batch-size N` the job takes the records in micro-batches of N (the DAG's default is
50,000) and the benchmark prints each batch's wall time and the CPU seconds of the Spark job and
of Cassandra while it ran: the first batch carries the JVM's start-up and most of its JIT
compilation, the later ones show the steady state a long-lived query reaches.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psutil
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import SimpleStatement

from bench.cpu import cpu_delta_s, cpu_s, service_process, tree_cpu_s
from include import cql
from include.provisioning import apply_cql
from local_stack.cli import make_context
from local_stack.scratch import delete_scratch
from local_stack.services import cassandra_session
from local_stack.settings import Settings
from local_stack.stream_harness import (
    job_config,
    job_report,
    produce_users,
    start_job,
)

BATCH_LOGGED = "users upserted"  # the job's log line at the end of each micro-batch

BASELINE_COLUMNS = ("user_id", "event_id", "first_name", "last_name", "email", "phone", "cell",
                    "street_number", "street_name", "city", "state", "country", "postcode",
                    "latitude", "longitude", "dob", "age", "registered_at", "nat", "id_value",
                    "picture_large", "event_time", "ingestion_time")


def baseline_rows(users: dict) -> list[tuple]:
    now = datetime.now(UTC)
    rows = []
    for event_id, (user_id, u) in enumerate(users.items(), start=1):
        rows.append((uuid.UUID(user_id), event_id, u["first_name"], u["last_name"],
                     u["email"].lower(), u["phone"], u["cell"], u["street_number"],
                     u["street_name"], u["city"], u["state"], u["country"], u["postcode"],
                     u["latitude"], u["longitude"], datetime.fromisoformat(u["dob"]), u["age"],
                     datetime.fromisoformat(u["registered_at"]), u["nat"], u["id_value"],
                     u["picture_large"], now, now))
    return rows


def raw_driver_write(session, keyspace: str, rows: list[tuple], concurrency: int) -> float:
    insert = session.prepare(
        f"INSERT INTO {keyspace}.users_baseline ({', '.join(BASELINE_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in BASELINE_COLUMNS)})")
    started = time.perf_counter()
    results = execute_concurrent_with_args(session, insert, rows, concurrency=concurrency,
                                           raise_on_first_error=True)
    assert all(ok for ok, _ in results)
    return time.perf_counter() - started


def run_job_by_batch(settings: Settings, config, log_path: Path, cassandra_process,
                     timeout_s: float) -> tuple[dict, list[dict]]:
    """Runs the job to its end, reading the Spark job's and Cassandra's CPU as each micro-batch
    is logged; returns the job's report and one entry per batch."""
    process = start_job(settings, config, log_path)
    job = psutil.Process(process.pid)
    deadline = time.monotonic() + timeout_s
    mark = (time.perf_counter(), tree_cpu_s(job), cpu_s(cassandra_process))
    batches: list[dict] = []
    logged, unread = 0, ""
    with log_path.open(errors="replace") as log:
        while process.poll() is None:
            if time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGKILL)  # the JVM and its Python driver
                raise TimeoutError(f"the stream job ran over {timeout_s:.0f}s; see {log_path}")
            time.sleep(0.5)
            # Only what the job appended; a partial last line waits for the next read.
            *lines, unread = (unread + log.read()).split("\n")
            logged += sum(BATCH_LOGGED in line for line in lines)
            if logged == len(batches):
                continue
            try:
                now = (time.perf_counter(), tree_cpu_s(job), cpu_s(cassandra_process))
            except psutil.NoSuchProcess:
                break
            batches.append({"batch": logged, "wall_s": round(now[0] - mark[0], 1),
                            "spark_job_cpu_s": round(cpu_delta_s(mark[1], now[1]), 1),
                            "cassandra_cpu_s": round(now[2] - mark[2], 1)})
            mark = now
    return job_report(process.wait(), config, log_path), batches


def count_rows(session, keyspace: str, table: str) -> int:
    """Counts by paging through the keys (a server-side count(*) of 200k rows times out)."""
    statement = SimpleStatement(f"SELECT user_id FROM {keyspace}.{table}", fetch_size=5000)
    return sum(1 for _ in session.execute(statement, timeout=120))



def summary(records: int, concurrency: int, report: dict, produce_s: float, wall_s: float,
            raw_s: float, job_cpu: dict[str, float], raw_cassandra_cpu: float) -> dict:
    steady = report["rows_written"] / report["processing_seconds"]
    raw_rate = records / raw_s
    return {
        "records": records,
        "produce_seconds": round(produce_s, 1),
        "spark_submit_wall_seconds": round(wall_s, 1),
        "job_startup_seconds": report["startup_seconds"],
        "job_processing_seconds": report["processing_seconds"],
        "batches": report["batches"],
        "steady_rows_per_s": round(steady),
        "end_to_end_rows_per_s_incl_startup": round(records / wall_s),
        "raw_driver_rows_per_s": round(raw_rate),
        "raw_driver_concurrency": concurrency,
        "ratio_steady_to_raw": round(steady / raw_rate, 3),
        # CPU per landed row: where the stream hop's time goes on a shared 2-core machine. The
        # job's CPU is read at each logged batch, so its JVM's exit is not counted.
        "cpu_us_per_row": {
            "spark_job": round(job_cpu["spark_job"] / records * 1e6),
            "cassandra_during_job": round(job_cpu["cassandra"] / records * 1e6),
            "cassandra_during_raw_write": round(raw_cassandra_cpu / records * 1e6),
        },
    }

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=0,
                        help="micro-batch cap (default: all records in one batch)")
    args = parser.parse_args()
    ctx, _ = make_context(Settings.from_env())
    s = ctx.settings
    keyspace = f"bench_stream_{uuid.uuid4().hex[:6]}"
    topic = f"bench-stream-{uuid.uuid4().hex[:6]}"
    cassandra_process = service_process(s.run_dir, "cassandra", "make up")
    cluster, session = cassandra_session(s, timeout=60)
    apply_cql(session, keyspace)
    statements = [st for st in cql.statements(keyspace) if f"{keyspace}.users (" in st]
    session.execute(statements[0].replace(f"{keyspace}.users (", f"{keyspace}.users_baseline ("),
                    timeout=60)
    try:
        produced = time.perf_counter()
        users = produce_users(s, topic, args.records, seed=99)
        produce_s = time.perf_counter() - produced
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            config = job_config(s, topic, keyspace, work / "checkpoint", work / "report.json",
                                max_offsets_per_trigger=args.batch_size or args.records)
            wall = time.perf_counter()
            report, batches = run_job_by_batch(s, config, work / "job.log", cassandra_process,
                                               timeout_s=3600)
            wall_s = time.perf_counter() - wall
            job_cpu = {"spark_job": sum(b["spark_job_cpu_s"] for b in batches),
                       "cassandra": sum(b["cassandra_cpu_s"] for b in batches)}
        print("stream job report:", json.dumps({k: v for k, v in report.items()
                                                 if k != "sample_user_ids"}), flush=True)
        for batch in batches:
            print("batch:", json.dumps(batch), flush=True)
        landed = count_rows(session, keyspace, "users")
        assert landed == args.records, (landed, args.records)
        rows = baseline_rows(users)
        cassandra_before = cpu_s(cassandra_process)
        raw_s = raw_driver_write(session, keyspace, rows, args.concurrency)
        raw_cassandra_cpu = cpu_s(cassandra_process) - cassandra_before
        baseline = count_rows(session, keyspace, "users_baseline")
        assert baseline == args.records
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=300)
        cluster.shutdown()
        delete_scratch(ctx, [topic], [f"{topic}-value"])
    print(json.dumps(summary(args.records, args.concurrency, report, produce_s, wall_s, raw_s,
                             job_cpu, raw_cassandra_cpu), indent=2))

if __name__ == "__main__":
    main()
