"""Proof that the stream hop landed: the user_ids sampled upstream are readable in Cassandra.

The provider's `CassandraRecordSensor` checks one key and reports an unreachable Cassandra as
"record not found" (and importing it loads the Cassandra driver, which DAG parsing must not).
`LandedUsersSensor` checks every sampled key in one query and probes
reachability first, so a timeout says which went wrong (`problem`: unreachable, a look-up that
kept failing, or records missing), and the alert names the keys that are missing. A look-up that
fails (a read timeout on a busy node) is poked again, not taken as the answer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk import BaseSensorOperator

from include import names
from include.assets import USERS_TOPIC

RECORDS_MISSING = "records_missing"
CASSANDRA_UNREACHABLE = "cassandra_unreachable"
RECORDS_UNCHECKED = "records_unchecked"
MAX_VERIFIED_KEYS = 200


def sampled_user_ids(context: Mapping[str, Any], report_task_id: str | None = None) -> list[str]:
    """The keys to verify: an explicit `verify_user_ids` run parameter, else the samples in the
    triggering Kafka asset events, else the sample the stream job reported."""
    explicit = (context.get("params") or {}).get("verify_user_ids") or []
    if explicit:
        return _unique(explicit)
    events = (context.get("triggering_asset_events") or {})
    sampled: list[str] = []
    for event in _events_for(events, USERS_TOPIC):
        sampled += list((event.extra or {}).get("sample_user_ids", []))
    if not sampled and report_task_id:
        report = context["ti"].xcom_pull(task_ids=report_task_id) or {}
        sampled = list(report.get("sample_user_ids", []))
    return _unique(sampled)[:MAX_VERIFIED_KEYS]


def _events_for(events: Any, asset: Any) -> list[Any]:
    try:
        return list(events[asset])
    except (KeyError, TypeError):
        return []


def _unique(values: Iterable[Any]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values))


def rows_by_user_ids(session: Any, table: str, columns: str, user_ids: list[str],
                     attempts: int = 4) -> list[Any]:
    """`columns` of the rows of `table` (keyspace.table) with these user_ids, read 100 keys at
    a time. A read timeout (a node busy with a write burst) is retried with a growing pause."""
    from cassandra import OperationTimedOut, ReadTimeout

    lookup = session.prepare(f"SELECT {columns} FROM {table} WHERE user_id IN ?")
    rows: list[Any] = []
    for start in range(0, len(user_ids), 100):
        chunk = [uuid.UUID(u) for u in user_ids[start:start + 100]]
        for attempt in range(1, attempts + 1):
            try:
                rows += list(session.execute(lookup, [chunk]))
                break
            except (ReadTimeout, OperationTimedOut):
                if attempt == attempts:
                    raise
                time.sleep(2 * attempt)
    return rows


def missing_user_ids(session: Any, table: str, user_ids: list[str]) -> list[str]:
    """The ids of `user_ids` with no row in `table` (keyspace.table), in their given order."""
    found = {str(row.user_id) for row in rows_by_user_ids(session, table, "user_id", user_ids)}
    return [u for u in user_ids if u not in found]


class LandedUsersSensor(BaseSensorOperator):
    """Pokes until every sampled user_id of the run has a row in `table` (keyspace.table).
    After a failure, `problem`, `problem_detail`, `missing` and `checked` say what went wrong
    (the alert reads them)."""

    template_fields = ("table",)

    def __init__(self, *, table: str, report_task_id: str | None = None,
                 cassandra_conn_id: str = names.CASSANDRA_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.report_task_id = report_task_id
        self.cassandra_conn_id = cassandra_conn_id
        self.problem: str | None = None
        self.problem_detail = ""
        self.missing: list[str] = []
        self.checked: list[str] = []

    def execute(self, context: Any) -> Any:
        timeout = (context.get("params") or {}).get("landing_timeout_s")
        if timeout:
            self.timeout = float(timeout)
        return super().execute(context)

    def poke(self, context: Any) -> bool:
        from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook

        self.checked = sampled_user_ids(context, self.report_task_id)
        if not self.checked:
            self.log.info("no sampled user_id to verify in this run")
            return True
        hook = CassandraHook(self.cassandra_conn_id)
        try:
            try:
                session = hook.get_conn()
                session.execute("SELECT release_version FROM system.local", timeout=10)
            except Exception as exc:  # any driver error here means "cannot reach"
                contact = ",".join(str(p) for p in hook.cluster.contact_points)
                return self._poke_again(CASSANDRA_UNREACHABLE,
                                        f"Cassandra at {contact} is unreachable: {exc}")
            try:
                self.missing = missing_user_ids(session, self.table, self.checked)
            except Exception as exc:  # a busy node's read timeout is not a verdict
                return self._poke_again(RECORDS_UNCHECKED,
                                        f"looking up the sampled user_ids failed: {exc}")
        finally:
            hook.shutdown_cluster()
        if self.missing:
            self.problem = RECORDS_MISSING
            self.problem_detail = (f"{len(self.missing)} of {len(self.checked)} sampled "
                                   f"user_ids are not in {self.table}")
            self.log.warning("%s: %s", self.problem_detail, self.missing[:10])
            return False
        self.problem = None
        self.log.info("all %d sampled user_ids are in %s", len(self.checked), self.table)
        return True

    def _poke_again(self, problem: str, detail: str) -> bool:
        self.problem, self.problem_detail = problem, detail
        self.missing = list(self.checked)
        self.log.warning("%s (will check again until the timeout)", detail)
        return False
