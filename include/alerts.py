"""Alerts for every hop, through one webhook (connection `alerts_webhook`, http provider).

Two kinds, one shape (`pipeline`, `hop`, `problem`, `summary`, `detail`, `counts`, `examples`, and
where it happened):
- `WebhookAlert`, every DAG's `on_failure_callback`: a task that finally failed. A check that
  failed for a reason of its own (the landing check) sets `problem`, `problem_detail`, `counts`
  and `examples` on its task, and the alert carries them;
- `send_run_alert`, from inside a task that succeeded but must tell someone: relay events that
  failed encoding, new dead letters in a stream run.
Every alert is logged. One that cannot be delivered is logged as an error, and fails the task when
it came from inside one. With no `alerts_webhook` connection at all, alerts are only logged.
"""

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
EVENTS_FAILED_ENCODING = "events_failed_encoding"
NEW_DEAD_LETTERS = "new_dead_letters"
HOPS = {names.INGEST_DAG_ID: "ingest", names.RELAY_DAG_ID: "relay",
        names.STREAM_DAG_ID: "stream", names.RETENTION_DAG_ID: "retention",
        names.REPLAY_DAG_ID: "replay"}
MAX_EXAMPLES = 10


class AlertNotDelivered(RuntimeError):
    pass


def hop_of(dag_id: str) -> str:
    return HOPS.get(dag_id, dag_id)


def _log_url(ti: Any, dag_id: str, run_id: str, task_id: str) -> str:
    url = getattr(ti, "log_url", None)
    if url:
        return str(url)
    base = os.environ.get("AIRFLOW__API__BASE_URL", "http://localhost:8080").rstrip("/")
    return f"{base}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}"


def run_alert(context: Mapping[str, Any], problem: str, detail: str,
              counts: Mapping[str, int] | None = None,
              examples: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An alert about the task of `context`: its hop, the problem, counts and a few examples."""
    ti = context["ti"]
    dag_id, run_id, task_id = ti.dag_id, ti.run_id, ti.task_id
    hop = hop_of(dag_id)
    return {
        "pipeline": "userstream",
        "hop": hop,
        "problem": problem,
        "summary": f"{hop} hop: {problem} in {dag_id}.{task_id}, run {run_id}",
        "detail": detail[:2000],
        "counts": dict(counts or {}),
        "examples": list(examples or [])[:MAX_EXAMPLES],
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "try_number": getattr(ti, "try_number", None),
        "log_url": _log_url(ti, dag_id, run_id, task_id),
    }


def failure_alert(context: Mapping[str, Any]) -> dict[str, Any]:
    """The alert for a task that finally failed; a check's own findings (set on the task as
    `problem`, `problem_detail`, `counts`, `examples`, `missing`, `checked`) come with it."""
    task = context.get("task")
    exception = context.get("exception")
    detail = getattr(task, "problem_detail", "") or (str(exception) if exception else "")
    missing = list(getattr(task, "missing", []) or [])
    alert = run_alert(context, getattr(task, "problem", None) or TASK_FAILED, detail,
                      counts=getattr(task, "counts", None),
                      examples=getattr(task, "examples", None))
    alert.update({
        "error": f"{type(exception).__name__}: {exception}"[:2000] if exception else None,
        "missing_user_ids": missing[:100],
        "missing_count": len(missing),
        "checked_count": len(getattr(task, "checked", []) or []),
    })
    return alert


def post_alert(payload: Mapping[str, Any], http_conn_id: str = names.ALERTS_WEBHOOK_CONN_ID,
               attempts: int = 3, pause_s: float = 2.0) -> bool:
    """Posts the alert as JSON; False when no webhook is configured (the alert is only logged).
    Raises AlertNotDelivered when the webhook kept refusing it."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.providers.http.hooks.http import HttpHook

    log.error("ALERT %s", json.dumps(payload, default=str))
    hook = HttpHook(method="POST", http_conn_id=http_conn_id)
    error: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            hook.run("", json=payload, extra_options={"timeout": 10})
            log.info("alert sent to connection %r", http_conn_id)
            return True
        except AirflowNotFoundException:
            log.warning("no %r connection is configured: this alert goes nowhere but this log",
                        http_conn_id)
            return False
        except Exception as exc:  # any transport or HTTP error: try again, then give up loudly
            error = exc
            log.warning("alert delivery attempt %d/%d failed: %s", attempt, attempts, exc)
            if attempt < attempts:
                time.sleep(pause_s * 2 ** (attempt - 1))
    raise AlertNotDelivered(f"ALERT NOT DELIVERED to connection {http_conn_id!r} after "
                            f"{attempts} attempts ({error}); the alert is in the log above")


def send_run_alert(context: Mapping[str, Any], problem: str, detail: str,
                   counts: Mapping[str, int], examples: list[dict[str, Any]]) -> dict[str, Any]:
    """Sends an alert from inside a running task; an undeliverable alert fails the task."""
    alert = run_alert(context, problem, detail, counts, examples)
    post_alert(alert)
    return alert


class WebhookAlert(BaseNotifier):
    """`on_failure_callback` of every hop: posts `failure_alert` to the `alerts_webhook`
    connection (the whole webhook URL may sit in its host, e.g.
    `https://hooks.example.org/T000/B000`)."""

    def __init__(self, http_conn_id: str = names.ALERTS_WEBHOOK_CONN_ID, attempts: int = 3):
        super().__init__()
        self.http_conn_id = http_conn_id
        self.attempts = attempts

    def notify(self, context: Any) -> None:
        try:
            post_alert(failure_alert(context), self.http_conn_id, self.attempts)
        except AlertNotDelivered as exc:  # the task already failed: say so as loudly as we can
            log.error("%s", exc)
