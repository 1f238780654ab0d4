"""Ingest benchmark: users/s through one ingest window (the ingest task's body) from the bundled
randomuser-compatible API into PostgreSQL (raw pages, users, outbox events), 5,000-user pages,
in a scratch database (the pipeline's own outbox is never touched).
Besides the task's own phase timings it reports the CPU seconds each process spent on the window:
the PostgreSQL backend of the window's transaction, this process (the task's work) and the API.

Run with the stack up (`make up SOURCE=local`):
    USERSTREAM_SOURCE=local .venv/bin/python -m bench.ingest_benchmark --users 50000
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import psutil

from bench.cpu import cpu_s, service_process
from include.ingest.window import IngestWindow, ingest_window
from include.randomuser.client import RandomUserClient
from local_stack.cli import make_context
from local_stack.services import pg_connect, scratch_database
from local_stack.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    settings = Settings.from_env()
    ctx, _ = make_context(settings)
    api = service_process(settings.run_dir, "randomuser-api", "make up SOURCE=local")
    os.environ.update({k: v for k, v in ctx.env.items() if k.startswith("AIRFLOW_CONN_")})
    from airflow.providers.http.hooks.http import HttpHook

    client = RandomUserClient(HttpHook(method="GET", http_conn_id="randomuser_api"))
    runs = []
    with scratch_database(ctx, "bench_ingest") as database:
        for _ in range(args.repeat):
            runs.append(_run_once(ctx, client, api, database, args.users))
            print(json.dumps(runs[-1]), flush=True)
    best = max(runs, key=lambda r: r["users_per_s"])
    median = sorted(r["users_per_s"] for r in runs)[len(runs) // 2]
    print(json.dumps({"median_users_per_s": median, "best": best}))


def _run_once(ctx, client, api, database: str, users: int) -> dict:
    """One window of `users` users into the scratch database, timed, with CPU per process."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    window = IngestWindow(f"bench-{uuid.uuid4().hex[:8]}", start, start + timedelta(minutes=1))
    with pg_connect(ctx, database) as conn:
        backend_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        meters = {"postgres_backend": psutil.Process(backend_pid),
                  "task": psutil.Process(), "local_api": api}
        before = {name: cpu_s(process) for name, process in meters.items()}
        started = time.perf_counter()
        result = ingest_window(window, client, conn, users_per_window=users)
        elapsed = time.perf_counter() - started
        cpu = {f"cpu_{name}": round(cpu_s(process) - before[name], 2)
               for name, process in meters.items()}
    assert result.inserted == users and result.new_events == users, result
    return {"users": users, "seconds": round(elapsed, 2), "users_per_s": round(users / elapsed),
            **result.timings_s, **cpu}


if __name__ == "__main__":
    main()
