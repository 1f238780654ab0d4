"""Proof that the stream hop landed everything, not only something.

`LandedUsersSensor` checks, in this order:
1. completeness: the stream's committed offsets (its checkpoint) reach the last offsets that the
   triggering relay runs reported, on every partition (`stream_incomplete`, with the shortfall);
2. accounting: every message the run consumed is a row written, a dead letter, or superseded by a
   newer event of the same user in its micro-batch (`stream_counts_mismatch`);
3. the sampled users: each has a row (`records_missing`) holding an event at least as new as the
   sampled one (`records_stale`).
For a Spark job of the run's own, 1 and 2 are verdicts the moment the job has ended. For the
pipeline's long-lived query, 1 is poked until the committed offsets get there, and 2 balances the
query's ledger entries of the micro-batches that read the relay's offsets (`include/stream/query`).
3 is poked until the timeout, and an unreachable Cassandra (`cassandra_unreachable`) or a look-up
that kept failing (`records_unchecked`) is told apart from missing rows. The sensor returns the
counts of what it verified (the job's report, or the ledger's totals). The provider's
`CassandraRecordSensor` checks one key, reports an unreachable Cassandra as "record not found",
and loads the driver at parse time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from include import names
from include.assets import USERS_TOPIC
from include.dag_defaults import STREAM_COMMIT_WAIT_S

RECORDS_MISSING = "records_missing"
RECORDS_STALE = "records_stale"
CASSANDRA_UNREACHABLE = "cassandra_unreachable"
RECORDS_UNCHECKED = "records_unchecked"
STREAM_INCOMPLETE = "stream_incomplete"
STREAM_COUNTS_MISMATCH = "stream_counts_mismatch"
MAX_VERIFIED_KEYS = 200


def landed_asset_extra(report: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The small facts the Cassandra asset event carries: what the run verified as landed."""
    return {
        "topic": params.get("topic", names.USERS_TOPIC),
        "keyspace": params.get("keyspace", names.CASSANDRA_KEYSPACE),
        "rows_written": report["rows_written"],
        "dead_letters": report["dead_letters"],
        "messages": report["messages"],
        "end_offsets": report["end_offsets"],
        "sample_user_ids": report["sample_user_ids"][:10],
    }


def wait_until(condition: Callable[[], bool], wait_s: float, every_s: float = 0.5) -> bool:
    """Whether `condition` holds within `wait_s`, asked every `every_s`."""
    deadline = time.monotonic() + wait_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(every_s)
    return True


def sampled_events(context: Mapping[str, Any],
                   report_task_id: str | None = None) -> dict[str, int | None]:
    """The users to verify, each with the event id its row must have reached (None: presence
    only): an explicit `verify_user_ids` run parameter, else the samples of the triggering Kafka
    asset events about the run's topic, else the sample the stream job reported."""
    params = context.get("params") or {}
    if explicit := params.get("verify_user_ids") or []:
        return dict.fromkeys(_unique(explicit))
    sampled: dict[str, int | None] = {}
    for extra in _relay_reports(context, params.get("topic", names.USERS_TOPIC)):
        pairs = extra.get("sample_events") or [(u, None) for u in extra.get("sample_user_ids", [])]
        for user_id, event_id in pairs:
            known = sampled.get(str(user_id))
            sampled[str(user_id)] = event_id if known is None else max(known, event_id or 0)
    if not sampled and report_task_id:
        report = context["ti"].xcom_pull(task_ids=report_task_id) or {}
        sampled = dict.fromkeys(_unique(report.get("sample_user_ids", [])))
    return dict(list(sampled.items())[:MAX_VERIFIED_KEYS])


def sampled_user_ids(context: Mapping[str, Any], report_task_id: str | None = None) -> list[str]:
    return list(sampled_events(context, report_task_id))


def expected_last_offsets(context: Mapping[str, Any], topic: str) -> dict[int, int]:
    """The last offset per partition the run must have consumed: an explicit
    `expected_last_offsets` run parameter, else the highest each triggering relay run of this
    topic reported. Empty when nothing says (a scheduled run with no relay run before it)."""
    explicit = (context.get("params") or {}).get("expected_last_offsets") or {}
    if explicit:
        return {int(p): int(o) for p, o in explicit.items()}
    last: dict[int, int] = {}
    for extra in _relay_reports(context, topic):
        for partition, offset in (extra.get("partition_last_offsets") or {}).items():
            last[int(partition)] = max(int(offset), last.get(int(partition), -1))
    return last


def expected_first_offsets(context: Mapping[str, Any], topic: str) -> dict[int, int]:
    """The first offset per partition the triggering relay runs of this topic wrote."""
    first: dict[int, int] = {}
    for extra in _relay_reports(context, topic):
        for partition, offset in (extra.get("partition_first_offsets") or {}).items():
            first[int(partition)] = min(int(offset), first.get(int(partition), int(offset)))
    return first


def uncounted_messages(report: Mapping[str, Any]) -> int:
    """Messages the run consumed that are neither a row written, a dead letter nor superseded
    (negative: more outcomes than messages). 0 when the run's books balance."""
    accounted = report["rows_written"] + report["dead_letters"] + report.get("superseded", 0)
    return report["messages"] - accounted


def _relay_reports(context: Mapping[str, Any], topic: str) -> list[dict[str, Any]]:
    """The facts of the triggering relay runs that published to `topic` (a relay run given a
    scratch topic reports it; one that does not say published to the pipeline's)."""
    events = _events_for(context.get("triggering_asset_events") or {}, USERS_TOPIC)
    extras = [event.extra or {} for event in events]
    return [extra for extra in extras if extra.get("topic", names.USERS_TOPIC) == topic]


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
    a time, at LOCAL_QUORUM: the stream writes at LOCAL_QUORUM, so a majority of the copies
    answers with the newest row even while one node is down. A read timeout (a node busy with a
    write burst) is retried with a growing pause."""
    from cassandra import ConsistencyLevel, OperationTimedOut, ReadTimeout

    lookup = session.prepare(f"SELECT {columns} FROM {table} WHERE user_id IN ?")
    lookup.consistency_level = ConsistencyLevel.LOCAL_QUORUM
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


def landed_event_ids(session: Any, table: str, user_ids: list[str]) -> dict[str, int | None]:
    """The event id each of these users' row holds, for those that have a row."""
    rows = rows_by_user_ids(session, table, "user_id, event_id", user_ids)
    return {str(row.user_id): row.event_id for row in rows}


def stale_user_ids(expected: Mapping[str, int | None],
                   landed: Mapping[str, int | None]) -> list[str]:
    """Users whose row holds an older event than the one sampled for them."""
    return [u for u, event_id in expected.items()
            if event_id is not None and u in landed and (landed[u] or 0) < event_id]


def missing_user_ids(session: Any, table: str, user_ids: list[str]) -> list[str]:
    """The ids of `user_ids` with no row in `table` (keyspace.table), in their given order."""
    found = {str(row.user_id) for row in rows_by_user_ids(session, table, "user_id", user_ids)}
    return [u for u in user_ids if u not in found]


class LandedUsersSensor(BaseSensorOperator):
    """Pokes until the run's data has provably landed in `table` (keyspace.table), see the module.
    After a failure, `problem`, `problem_detail`, `counts`, `examples`, `missing` and `checked`
    say what went wrong (the alert reads them)."""

    template_fields = ("table",)

    def __init__(self, *, table: str, report_task_id: str | None = None,
                 cassandra_conn_id: str = names.CASSANDRA_CONN_ID,
                 commit_wait_s: float = STREAM_COMMIT_WAIT_S, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commit_wait_s = commit_wait_s
        self.table = table
        self.report_task_id = report_task_id
        self.cassandra_conn_id = cassandra_conn_id
        self.problem: str | None = None
        self.problem_detail = ""
        self.counts: dict[str, int] = {}
        self.examples: list[dict[str, Any]] = []
        self.missing: list[str] = []
        self.checked: list[str] = []
        self.ledger_entries: list[dict[str, Any]] = []

    def execute(self, context: Any) -> Any:
        params = context.get("params") or {}
        if timeout := params.get("landing_timeout_s"):
            self.timeout = float(timeout)
        report = super().execute(context)
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = landed_asset_extra(report, params)
        return report

    def poke(self, context: Any) -> bool | PokeReturnValue:
        from airflow.exceptions import AirflowFailException

        from include.stream.supervision import uses_long_lived_query

        params = context.get("params") or {}
        topic = params.get("topic", names.USERS_TOPIC)
        if uses_long_lived_query(topic, params.get("keyspace", names.CASSANDRA_KEYSPACE)):
            # The query commits a window a few seconds after the relay: a poke that gave up at
            # once cost a second task process and a `poke_interval` more.
            if self._incomplete(context, wait_s=self.commit_wait_s):
                from include.stream.operator import pipeline_query_dir
                from include.stream.query import query_health, read_heartbeat

                _, health = query_health(read_heartbeat(pipeline_query_dir()))
                self.problem_detail += f"; {health}"
                self.log.warning("%s (will check again until the timeout)", self.problem_detail)
                return False
            summary = self._ledger_summary(context, topic)
        else:
            if self._incomplete(context) or self._unbalanced(context):
                raise AirflowFailException(self.problem_detail)
            summary = (context["ti"].xcom_pull(task_ids=self.report_task_id)
                       if self.report_task_id else None)
        expected = sampled_events(context, self.report_task_id)
        self.checked = list(expected)
        if not self.checked:
            self.log.info("no sampled user_id to verify in this run")
            return self._verified(summary, context)
        landed = self._landed(self.checked)
        if landed is None:
            return False
        self.missing = [u for u in self.checked if u not in landed]
        if self.missing:
            return self._not_yet(RECORDS_MISSING,
                                 f"{len(self.missing)} of {len(self.checked)} sampled user_ids "
                                 f"are not in {self.table}", self.missing)
        stale = stale_user_ids(expected, landed)
        if stale:
            self.examples = [{"user_id": u, "sampled_event_id": expected[u],
                              "landed_event_id": landed[u]} for u in stale[:10]]
            self._not_yet(RECORDS_STALE, f"{len(stale)} of {len(self.checked)} sampled users "
                          f"hold an older event in {self.table} than the relay sent", stale)
            self.missing = []
            return False
        self.problem = None
        self.log.info("all %d sampled user_ids are in %s, each at least as new as sampled",
                      len(self.checked), self.table)
        return self._verified(summary, context)

    def _verified(self, summary: dict[str, Any] | None, context: Any) -> PokeReturnValue:
        if summary and "batch_ids" in summary:  # the long-lived query's ledger
            summary["sample_user_ids"] = self.checked[:20]
            self._alert_unalerted_dead_letters(context)
        return PokeReturnValue(True, summary)

    def _alert_unalerted_dead_letters(self, context: Any) -> None:
        """Alerts the dead letters of the ledger's batches that no other run alerted: a batch
        that read two relay runs' messages is checked by both their stream runs."""
        from include.stream.operator import alert_new_dead_letters, pipeline_query_dir
        from include.stream.query import (
            claim_dead_letter_alerts,
            ledger_totals,
            release_dead_letter_alerts,
        )

        folder = pipeline_query_dir()
        claimed = claim_dead_letter_alerts(folder, self.ledger_entries)
        if not claimed:
            return
        try:
            alert_new_dead_letters(ledger_totals(claimed), context)
        except BaseException:
            release_dead_letter_alerts(folder, claimed)
            raise

    def _ledger_summary(self, context: Any, topic: str) -> dict[str, Any]:
        """The totals of the long-lived query's micro-batches that read the relay's offsets;
        fails the run when one of them does not account for every message it read, and
        alerts when they dead-lettered messages."""
        from airflow.exceptions import AirflowFailException

        from include.stream.operator import pipeline_query_dir
        from include.stream.query import (
            entries_reading,
            ledger_totals,
            offset_ranges,
            read_ledger,
            unbalanced_entries,
        )

        ranges = offset_ranges(expected_first_offsets(context, topic),
                               expected_last_offsets(context, topic))
        entries = entries_reading(read_ledger(pipeline_query_dir()), ranges) if ranges else []
        self.ledger_entries = entries
        summary = ledger_totals(entries)
        self.log.info("the query's micro-batches %s read the relay's offsets %s: %d messages, "
                      "%d rows written, %d dead letters, %d superseded", summary["batch_ids"],
                      ranges, summary["messages"], summary["rows_written"],
                      summary["dead_letters"], summary["superseded"])
        if unbalanced := unbalanced_entries(entries):
            self.problem = STREAM_COUNTS_MISMATCH
            self.counts = {key: summary[key] for key in
                           ("messages", "rows_written", "dead_letters", "superseded")}
            self.examples = unbalanced[:10]
            self.problem_detail = (
                f"{len(unbalanced)} micro-batch(es) of the stream query do not account for "
                f"every message they read (batch ids "
                f"{[e['batch_id'] for e in unbalanced[:10]]})")
            raise AirflowFailException(self.problem_detail)
        return summary

    def _incomplete(self, context: Any, wait_s: float = 0.0) -> bool:
        """True (with the problem set) when the committed offsets stop short of the relay's, and
        still do after `wait_s` of reading the checkpoint again."""
        from include.stream.checkpoint import committed_offsets, shortfall
        from include.stream.job import checkpoint_root
        from include.stream.operator import checkpoint_name

        params = context.get("params") or {}
        topic = params.get("topic", names.USERS_TOPIC)
        expected = expected_last_offsets(context, topic)
        if not expected:
            return False
        checkpoint = checkpoint_root() / checkpoint_name(
            topic, params.get("keyspace", names.CASSANDRA_KEYSPACE))
        committed: dict[int, int] = {}
        short: dict[int, int] = {}

        def caught_up() -> bool:
            nonlocal committed, short
            committed = committed_offsets(checkpoint, topic)
            short = shortfall(expected, committed)
            return not short

        if wait_until(caught_up, wait_s):
            self.log.info("the stream committed every offset the relay reported: %s", expected)
            return False
        self.problem = STREAM_INCOMPLETE
        self.counts = {"messages_short": sum(short.values()), "partitions_short": len(short)}
        self.examples = [{"partition": p, "relay_last_offset": expected[p],
                          "committed_offset": committed.get(p)} for p in short]
        self.problem_detail = (
            f"the stream is incomplete: its committed offsets on {topic} are "
            f"{sum(short.values()):,} message(s) short of the end offsets the relay reported ("
            + ", ".join(f"p{p}: {n:,} short" for p, n in short.items())
            + "); the messages stay in Kafka and the next run reads them")
        return True

    def _unbalanced(self, context: Any) -> bool:
        report = (context["ti"].xcom_pull(task_ids=self.report_task_id)
                  if self.report_task_id else None)
        if not report or "superseded" not in report:
            return False
        uncounted = uncounted_messages(report)
        if uncounted == 0:
            return False
        self.problem = STREAM_COUNTS_MISMATCH
        self.counts = {key: report.get(key, 0) for key in
                       ("messages", "rows_written", "dead_letters", "superseded")}
        self.problem_detail = (
            f"the stream run consumed {report['messages']:,} message(s) but accounts for "
            f"{report['messages'] - uncounted:,} (rows written {report['rows_written']:,}, "
            f"dead letters {report['dead_letters']:,}, superseded {report['superseded']:,})")
        return True

    def _landed(self, user_ids: list[str]) -> dict[str, int | None] | None:
        """The landed event id of each user found, or None (problem set) when Cassandra could
        not answer."""
        from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook

        hook = CassandraHook(self.cassandra_conn_id)
        try:
            try:
                session = hook.get_conn()
                session.execute("SELECT release_version FROM system.local", timeout=10)
            except Exception as exc:  # any driver error here means "cannot reach"
                contact = ",".join(str(p) for p in hook.cluster.contact_points)
                self._not_yet(CASSANDRA_UNREACHABLE,
                              f"Cassandra at {contact} is unreachable: {exc}", user_ids)
                return None
            try:
                return landed_event_ids(session, self.table, user_ids)
            except Exception as exc:  # a busy node's read timeout is not a verdict
                self._not_yet(RECORDS_UNCHECKED,
                              f"looking up the sampled user_ids failed: {exc}", user_ids)
                return None
        finally:
            hook.shutdown_cluster()

    def _not_yet(self, problem: str, detail: str, keys: list[str]) -> bool:
        self.problem, self.problem_detail, self.missing = problem, detail, list(keys)
        self.counts = {"checked": len(self.checked), "failing": len(keys)}
        self.log.warning("%s: %s (will check again until the timeout)", detail, keys[:10])
        return False
