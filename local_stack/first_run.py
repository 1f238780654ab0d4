"""The end of `make up`: the pipeline runs. The three DAGs are unpaused (unless
USERSTREAM_START_PAUSED=true) and `up` waits until users have landed in Cassandra, then shows how
many, one of them, and where to watch. When the real randomuser API cannot be reached, it says so,
names the bundled source's setting, and leaves the DAGs paused on a healthy stack."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from include import names
from local_stack.services import Context, cassandra_session

REAL_API_PROBE = "https://randomuser.me/api/1.4/?results=1&inc=login"
SAMPLE_COLUMNS = ("user_id", "event_id", "first_name", "last_name", "email", "country",
                  "ingestion_time")


@dataclass
class Landing:
    users: int
    exact: bool
    sample: dict[str, Any] | None
    seconds: float


def real_api_problem(url: str = REAL_API_PROBE, timeout_s: float = 8.0) -> str | None:
    """Why the real randomuser API cannot serve ingest from here, or None when it answers."""
    import requests

    try:
        response = requests.get(url, timeout=timeout_s)
    except requests.RequestException as exc:
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    return None


def unpause_pipeline(ctx: Context) -> None:
    from local_stack.airflow_api import AirflowApi

    api = AirflowApi(ctx)
    for dag_id in names.ALL_DAG_IDS:
        api.wait_for_dag(dag_id)
        api.set_paused(dag_id, False)


def landed_users(ctx: Context, budget_s: float = 5.0) -> tuple[int, bool]:
    from ops.pipeline_status import count_rows

    cluster, session = cassandra_session(ctx.settings, timeout=10)
    try:
        return count_rows(session, f"{names.CASSANDRA_KEYSPACE}.users", "user_id", budget_s)
    finally:
        cluster.shutdown()


def sample_user(ctx: Context) -> dict[str, Any] | None:
    cluster, session = cassandra_session(ctx.settings, timeout=10)
    try:
        row = session.execute(f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM "
                              f"{names.CASSANDRA_KEYSPACE}.users LIMIT 1").one()
    finally:
        cluster.shutdown()
    return {k: str(v) for k, v in row._asdict().items()} if row else None


def wait_for_landing(ctx: Context, timeout_s: float, say: Callable[[str], None],
                     poll_s: float = 5.0) -> Landing | None:
    """Waits until `userstream.users` has rows; None when none came within `timeout_s`."""
    started = time.monotonic()
    next_note = started + 30
    while True:
        try:
            users, exact = landed_users(ctx)
        except Exception as exc:  # Cassandra busy with its first compaction: ask again
            users, exact = 0, False
            say(f"  (counting users failed: {type(exc).__name__}; trying again)")
        elapsed = time.monotonic() - started
        if users:
            return Landing(users, exact, sample_user(ctx), elapsed)
        if elapsed > timeout_s:
            return None
        if time.monotonic() > next_note:
            say(f"  waiting for the first users to land ({elapsed:.0f}s; ingest runs every "
                "minute, then the relay and the Spark job)")
            next_note += 30
        time.sleep(poll_s)


def run_pipeline(ctx: Context, say: Callable[[str], None],
                 api_probe: str = REAL_API_PROBE) -> bool:
    """Unpauses the DAGs and waits for the first users; False when none landed in time."""
    settings = ctx.settings
    if settings.start_paused:
        say("  the pipeline's DAGs are left as they are (USERSTREAM_START_PAUSED=true): "
            "unpause them in the Airflow UI to run it")
        return True
    if settings.source == "api" and (problem := real_api_problem(api_probe)):
        say(f"\n  The randomuser API (https://randomuser.me) cannot be reached from this "
            f"machine: {problem}.\n  The DAGs stay paused, so ingest does not fail every "
            f"minute. To run the pipeline on the bundled randomuser-compatible API instead:\n"
            f"    make up SOURCE=local      (the setting: USERSTREAM_SOURCE=local)")
        return True
    unpause_pipeline(ctx)
    say(f"  unpaused {', '.join(names.ALL_DAG_IDS)}")
    landing = wait_for_landing(ctx, settings.first_landing_timeout_s, say)
    if landing is None:
        say(f"\n  No user landed in Cassandra within {settings.first_landing_timeout_s}s. The "
            f"stack is up; see `make status` and the DAG runs in the Airflow UI.")
        return False
    count = f"{landing.users:,}" if landing.exact else f"at least {landing.users:,}"
    say(f"\n  {count} users have landed in Cassandra ({names.CASSANDRA_KEYSPACE}.users), "
        f"for example:\n    {json.dumps(landing.sample, ensure_ascii=False)}")
    return True
