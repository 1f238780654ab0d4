"""What the hops share: the retry policy (exponential backoff, capped, a bounded run time) and the
schedule of a downstream hop (its upstream asset, with a periodic safety net)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any


def hop_default_args(retries: int, execution_timeout: timedelta) -> dict[str, Any]:
    return {
        "retries": retries,
        "retry_delay": timedelta(seconds=10),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=5),
        "execution_timeout": execution_timeout,
    }


def on_asset_with_safety_net(asset: Any, cron: str) -> Any:
    """Runs when the upstream asset has a new event, and on `cron` too, so an asset event that
    was missed (a paused DAG, a lost event) never leaves data waiting forever."""
    from airflow.timetables.assets import AssetOrTimeSchedule
    from airflow.timetables.trigger import CronTriggerTimetable

    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron, timezone="UTC"),
                               assets=asset)
