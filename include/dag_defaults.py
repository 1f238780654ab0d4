"""The retry policy every hop shares: exponential backoff, capped, and a bounded run time."""

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
