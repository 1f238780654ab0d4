"""The Airflow REST API as the tests and benchmarks drive it: trigger, pause, wait for runs and
tasks, settle, clear, explain failures; and the `airflow` CLI with the stack's environment.

DAGs, DAG runs and task instances go through Airflow's official Python client
(`apache-airflow-client`); `call` reaches what these helpers add on top (asset events, queued
asset events, backfills) with the same token."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime
from typing import Any

import requests
from airflow_client import client

from local_stack.services import Context, airflow_auth_header
from local_stack.settings import PROJECT_ROOT


def as_dict(model: Any) -> dict:
    """A client model as the REST API's JSON: every field, null ones too, timestamps as ISO
    strings (the client's own to_dict and to_json leave null fields out)."""
    return model.model_dump(mode="json", by_alias=True)


class AirflowApi:
    def __init__(self, ctx: Context):
        self.base = ctx.settings.airflow_url
        self.logs_dir = ctx.settings.state_dir / "airflow" / "logs"
        auth = airflow_auth_header(ctx)
        self.session = requests.Session()
        self.session.headers.update(auth)
        api_client = client.ApiClient(client.Configuration(
            host=self.base, access_token=auth["Authorization"].removeprefix("Bearer ")))
        self.dags = client.DAGApi(api_client)
        self.dag_runs = client.DagRunApi(api_client)
        self.task_instances = client.TaskInstanceApi(api_client)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base}/api/v2{path}", timeout=30, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout_s: float = 180) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return as_dict(self.dags.get_dag(dag_id))
            except client.exceptions.NotFoundException:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"DAG {dag_id} was not parsed within {timeout_s}s") from None
            time.sleep(2)

    def trigger(self, dag_id: str, logical_date: datetime | None = None,
                conf: dict[str, Any] | None = None, run_id: str | None = None) -> dict:
        """A manual run (no logical date unless given); returns the run."""
        body = client.TriggerDAGRunPostBody(logical_date=logical_date, conf=conf or {},
                                            dag_run_id=run_id)
        return as_dict(self.dag_runs.trigger_dag_run(dag_id, body))

    def is_paused(self, dag_id: str) -> bool:
        return bool(self.dags.get_dag(dag_id).is_paused)

    def asset_events(self, source_dag_id: str, since: datetime, timeout_s: float = 60,
                     **params: Any) -> list[dict]:
        """The asset events a DAG emitted since a moment, newest first. Airflow's
        GET /assets/events answers 500 while a DAG run one of the listed events created is still
        queued (its null start_date fails the response model), so a 500 is retried and `since`
        keeps older events, whose runs may stay queued, out of the listing."""
        deadline = time.monotonic() + timeout_s
        while True:
            response = self.session.get(f"{self.base}/api/v2/assets/events", timeout=30, params={
                "source_dag_id": source_dag_id, "timestamp_gte": since.isoformat(),
                "limit": 100, "order_by": "-timestamp", **params})
            if response.status_code == 200:
                return response.json()["asset_events"]
            if response.status_code < 500 or time.monotonic() > deadline:
                raise AssertionError(f"GET /assets/events -> {response.status_code}: "
                                     f"{response.text}")
            time.sleep(2)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.dags.patch_dag(dag_id, client.DAGPatchBody(is_paused=paused))

    def pause_when_idle(self, dag_id: str, timeout_s: float = 600) -> None:
        """Pauses the DAG with no run of it in flight. The scheduler neither queues the tasks of a
        paused DAG nor ends its runs, so a run created just before a plain pause (a cron run
        whose task was still only scheduled, say) would stay running for ever and keep `settle`
        waiting. Pausing first and then looking means no run can appear after the look."""
        while True:
            self.set_paused(dag_id, True)
            if not self._in_flight(dag_id):
                return
            self.set_paused(dag_id, False)
            self.settle(dag_id, timeout_s=timeout_s)

    def _in_flight(self, dag_id: str) -> int:
        return self.dag_runs.get_dag_runs(dag_id, state=["queued", "running"],
                                          limit=1).total_entries

    def runs(self, dag_id: str, order_by: str | None = None, **params: Any) -> list[dict]:
        found = self.dag_runs.get_dag_runs(dag_id, limit=100, order_by=[order_by] if order_by
                                           else None, **params)
        return [as_dict(run) for run in found.dag_runs]

    def wait_for_runs(self, dag_id: str, run_ids: set[str], timeout_s: float = 300) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while True:
            # Each by its id: a listing pages, and a DAG that ran for a while has many runs.
            runs = [as_dict(self.dag_runs.get_dag_run(dag_id, run_id))
                    for run_id in sorted(run_ids)]
            if len(runs) == len(run_ids) and all(r["state"] in {"success", "failed"}
                                                 for r in runs):
                return runs
            if time.monotonic() > deadline:
                raise AssertionError(f"runs not finished within {timeout_s}s: "
                                     f"{[(r['dag_run_id'], r['state']) for r in runs]}")
            time.sleep(2)


    def explain_failures(self, dag_id: str, runs: list[dict], log_lines: int = 15) -> str:
        """What failed in the runs that did not succeed: each failed task, its tries and the
        last lines of its log, so a failure in CI says why without the machine at hand."""
        parts = []
        for run in runs:
            if run["state"] == "success":
                continue
            run_id = run["dag_run_id"]
            parts.append(f"{dag_id} {run_id}: {run['state']}")
            instances = [as_dict(ti) for ti in self.task_instances.get_task_instances(
                dag_id, run_id, limit=100).task_instances]
            for ti in instances:
                if ti["state"] in {"success", "skipped", None}:
                    continue
                parts.append(f"  {ti['task_id']}: {ti['state']} (try {ti['try_number']})")
                log = (self.logs_dir / f"dag_id={dag_id}" / f"run_id={run_id}"
                       / f"task_id={ti['task_id']}" / f"attempt={ti['try_number']}.log")
                if log.exists():
                    parts += [f"    {line[:300]}"
                              for line in log.read_text(errors="replace").splitlines()[-log_lines:]]
        return "\n".join(parts)

    def settle(self, *dag_ids: str, timeout_s: float = 900) -> None:
        """Waits until these DAGs have nothing left to do: no run queued or running (asset and
        cron runs too), and no asset event queued for an unpaused one. The scheduler holds an
        asset event back while a DAG is at max_active_runs (a safety-net run, say) and turns it
        into a run only after that run ends, so a gap with no run in flight is not the end."""
        deadline = time.monotonic() + timeout_s
        while busy := self._busy(dag_ids):
            assert time.monotonic() < deadline, \
                f"{dag_ids} did not settle in {timeout_s}s: {busy}"
            time.sleep(3)

    def _busy(self, dag_ids: tuple[str, ...]) -> list[str]:
        busy = []
        for dag_id in dag_ids:
            if in_flight := self._in_flight(dag_id):
                busy.append(f"{dag_id}: {in_flight} runs in flight")
            elif not self.is_paused(dag_id):
                queued = self.call("GET", f"/dags/{dag_id}/assets/queuedEvents")["total_entries"]
                if queued:
                    busy.append(f"{dag_id}: {queued} asset events queued")
        return busy

    def clear_task(self, dag_id: str, run_id: str, task_id: str,
                   include_downstream: bool = False) -> list[str]:
        """Clears one task of a run for real (REST clear is a dry run unless told otherwise);
        returns the ids of the cleared tasks."""
        cleared = self.task_instances.post_clear_task_instances(
            dag_id, client.ClearTaskInstancesBody(
                dry_run=False, only_failed=False, dag_run_id=run_id,
                task_ids=[client.ClearTaskInstancesBodyTaskIdsInner(task_id)],
                include_downstream=include_downstream))
        return [ti.task_id for ti in cleared.task_instances]

    def wait_for_task(self, dag_id: str, run_id: str, task_id: str, states: set[str],
                      timeout_s: float, never: frozenset[str] = frozenset(), min_try: int = 1,
                      poll_s: float = 2) -> dict:
        """The task instance once it is in one of `states` (at try `min_try` or later); fails
        at once if it reaches a state in `never`."""
        deadline = time.monotonic() + timeout_s
        while True:
            ti = as_dict(self.task_instances.get_task_instance(dag_id, run_id, task_id))
            if ti["state"] in states and ti["try_number"] >= min_try:
                return ti
            assert ti["state"] not in never, f"{task_id} became {ti['state']}: {ti}"
            assert time.monotonic() < deadline, (
                f"{task_id} did not reach {sorted(states)} within {timeout_s}s: {ti}")
            time.sleep(poll_s)


def airflow_cli(ctx: Context, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    airflow = PROJECT_ROOT / ".venv" / "bin" / "airflow"
    return subprocess.run([str(airflow), *args], env=ctx.env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=timeout)
