"""Reading the local alert inbox (`alerts_webhook` in local mode) from the scheduler tests."""

from __future__ import annotations

import time

import requests


def alerts_for(stack, run_id: str, problem: str | None = None) -> list[dict]:
    entries = requests.get(f"{stack.settings.alerts_url}/alerts", timeout=10).json()
    return [e["alert"] for e in entries if e["alert"].get("run_id") == run_id
            and (problem is None or e["alert"].get("problem") == problem)]


def wait_for_alert(stack, run_id: str, problem: str | None = None,
                   timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while not (found := alerts_for(stack, run_id, problem)):
        assert time.monotonic() < deadline, (
            f"no {problem or ''} alert for run {run_id} within {timeout_s}s")
        time.sleep(1)
    return found[-1]
