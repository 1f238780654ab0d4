"""What the hops share: the retry policy (exponential backoff, capped, a bounded run time), an
alert when a task finally fails, and the schedule of a downstream hop (its upstream asset, with a
periodic safety net)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any


def hop_default_args(retries: int, execution_timeout: timedelta | None) -> dict[str, Any]:
    from include.alerts import WebhookAlert

    return {
        "retries": retries,
        "retry_delay": timedelta(seconds=10),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=5),
        "execution_timeout": execution_timeout,
        "on_failure_callback": [WebhookAlert()],
    }


def on_asset_with_safety_net(asset: Any, cron: str) -> Any:
    """Runs when the upstream asset has a new event, and on `cron` too, so an asset event that
    was missed (a paused DAG, a lost event) never leaves data waiting forever."""
    from airflow.timetables.assets import AssetOrTimeSchedule
    from airflow.timetables.trigger import CronTriggerTimetable

    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron, timezone="UTC"),
                               assets=asset)


# Each hop's defaults, read by its DAG file at parse time and by the hop's code when it runs; kept
# here because the hop modules import their drivers (psycopg, confluent_kafka), which DAG parsing
# must not load.
USERS_PER_WINDOW = 500
RELAY_BATCH_SIZE = 5000
# Micro-batches of at most 50,000 messages: a backlog lands in steps (rows readable sooner, the
# driver's 1g holds a batch) at a few seconds of fixed cost per batch.
STREAM_MAX_OFFSETS_PER_TRIGGER = 50_000
# The DAG's job stays up while messages keep coming, so one Spark start-up (10-30 s on 2 cores)
# serves many relay runs; it ends once idle, so every DAG run finishes and emits its asset.
# Spark fires a processing-time trigger on wall-clock multiples of the interval, and a window's
# events reach the topic 1.5-3 s after the minute: at 5 s they waited for the :05 trigger (p95
# event -> row 6.2 s at the default cadence), at 1 s for the next second.
STREAM_TRIGGER_INTERVAL = "1 second"
STREAM_STOP_WHEN_IDLE_S = 30
STREAM_MAX_RUN_S = 600
# The long-lived query: a micro-batch running this long fails it (a stalled query), and Airflow
# restarts a failed query this many times (10 s, 20 s, ... 5 min apart: about 25 minutes) before
# its supervisor run fails; the next stream DAG run starts it again.
STREAM_QUERY_STALL_S = 900
# How long one poke of the landing check waits for the query to commit the relay's offsets
# before it gives its worker slot back until the next poke.
STREAM_COMMIT_WAIT_S = 20
STREAM_QUERY_RETRIES = 8
