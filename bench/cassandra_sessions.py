"""Cassandra's CPU per session a task opens through the provider's hook: as the tasks open it
(the driver reads every keyspace's schema and the token ring when it connects), with that
reading turned off, and as the stream DAG's first task uses it (applying the keyspace's
statements again). The stream DAG's tasks open two sessions every run, one run a minute at the
default cadence.

    .venv/bin/python -m bench.cassandra_sessions --sessions 10 --rounds 2

Each session logs in, runs one query and closes, `--gap` seconds apart (past the node's 2 s
credentials cache, as at the cadence). The arms alternate; an idle window as long as each arm,
just before it, is subtracted from its reading, so the figure is what the sessions add.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid

from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook

from bench.cpu import cpu_s, service_process
from include import names
from include.provisioning import apply_cql_with_hook
from local_stack.cli import make_context
from local_stack.services import cassandra_session
from local_stack.settings import Settings

ARMS = ("driver_default", "without_metadata", "apply_cql")


def one_session(arm: str, keyspace: str) -> None:
    if arm == "apply_cql":  # what the stream DAG's first task does every run
        apply_cql_with_hook(names.CASSANDRA_ADMIN_CONN_ID, keyspace)
        return
    hook = CassandraHook(cassandra_conn_id=names.CASSANDRA_CONN_ID)
    if arm == "without_metadata":
        hook.cluster.schema_metadata_enabled = False
        hook.cluster.token_metadata_enabled = False
    try:
        hook.get_conn().execute("SELECT release_version FROM system.local", timeout=30)
    finally:
        hook.shutdown_cluster()


def added_cpu_ms(cassandra, count: int, gap_s: float, arm: str, keyspace: str) -> float:
    """Cassandra's CPU per session, less what it used in an idle window of the same length."""
    idle_start = cpu_s(cassandra)
    time.sleep(count * gap_s)
    idle = cpu_s(cassandra) - idle_start
    started, start = time.perf_counter(), cpu_s(cassandra)
    for _ in range(count):
        one_session(arm, keyspace)
        time.sleep(gap_s)
    busy = cpu_s(cassandra) - start
    idle_per_s = idle / (count * gap_s)
    return 1000 * (busy - idle_per_s * (time.perf_counter() - started)) / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--gap", type=float, default=3.0)
    args = parser.parse_args()
    ctx, _ = make_context(Settings.from_env())
    os.environ.update(ctx.env)  # the hooks read the pipeline's connections from it
    cassandra = service_process(ctx.settings.run_dir, "cassandra", "make up")
    keyspace = f"bench_sessions_{uuid.uuid4().hex[:6]}"
    results: dict[str, list[float]] = {arm: [] for arm in ARMS}
    try:
        apply_cql_with_hook(names.CASSANDRA_ADMIN_CONN_ID, keyspace)
        for _ in range(args.rounds):
            for arm in ARMS:
                ms = added_cpu_ms(cassandra, args.sessions, args.gap, arm, keyspace)
                results[arm].append(round(ms, 1))
                print(f"{arm}: {ms:.0f} ms of Cassandra CPU per session", flush=True)
    finally:
        cluster, session = cassandra_session(ctx.settings, timeout=60)
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
        cluster.shutdown()
    print(json.dumps({"sessions_per_arm": args.sessions, "gap_s": args.gap,
                      "cassandra_cpu_ms_per_session": results}))


if __name__ == "__main__":
    main()
