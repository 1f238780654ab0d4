"""Alerts for the stream hop: a notifier that posts what failed, where, and why to a webhook
(connection `alerts_webhook`, http provider), and always logs it."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseNotifier

from include import names

log = logging.getLogger(__name__)
TASK_FAILED = "task_failed"


def _log_url(ti: Any, dag_id: str, run_id: str, task_id: str) -> str:
    url = getattr(ti, "log_url", None)
    if url:
        return str(url)
    base = os.environ.get("AIRFLOW__API__BASE_URL", "http://localhost:8080").rstrip("/")
    return f"{base}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}"


def alert_payload(context: Mapping[str, Any]) -> dict[str, Any]:
    """The alert's body from a task's failure context (the sensor adds its findings)."""
    ti = context["ti"]
    task = context.get("task")
    dag_id, run_id, task_id = ti.dag_id, ti.run_id, ti.task_id
    problem = getattr(task, "problem", None) or TASK_FAILED
    missing = list(getattr(task, "missing", []) or [])
    exception = context.get("exception")
    detail = getattr(task, "problem_detail", "") or (str(exception) if exception else "")
    return {
        "pipeline": "userstream",
        "summary": f"{dag_id}.{task_id} failed in run {run_id}: {problem}",
        "problem": problem,
        "detail": detail[:2000],
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "try_number": getattr(ti, "try_number", None),
        "missing_user_ids": missing[:100],
        "missing_count": len(missing),
        "checked_count": len(getattr(task, "checked", []) or []),
        "error": (f"{type(exception).__name__}: {exception}"[:2000] if exception else None),
        "log_url": _log_url(ti, dag_id, run_id, task_id),
    }


class WebhookAlert(BaseNotifier):
    """Posts `alert_payload` as JSON to the `alerts_webhook` connection (the whole webhook URL
    may sit in the connection's host, e.g. `https://hooks.example.org/T000/B000`)."""

    def __init__(self, http_conn_id: str = names.ALERTS_WEBHOOK_CONN_ID, endpoint: str = "",
                 attempts: int = 3):
        super().__init__()
        self.http_conn_id = http_conn_id
        self.endpoint = endpoint
        self.attempts = attempts

    def notify(self, context: Any) -> None:
        from airflow.providers.http.hooks.http import HttpHook

        payload = alert_payload(context)
        log.error("ALERT %s", json.dumps(payload))
        hook = HttpHook(method="POST", http_conn_id=self.http_conn_id)
        for attempt in range(1, self.attempts + 1):
            try:
                hook.run(self.endpoint, json=payload, extra_options={"timeout": 10})
                log.info("alert sent to connection %r", self.http_conn_id)
                return
            except Exception as exc:
                log.warning("alert delivery attempt %d/%d failed: %s", attempt, self.attempts, exc)
                time.sleep(2 ** attempt)
        log.error("alert could not be delivered to %r after %d attempts", self.http_conn_id,
                  self.attempts)
