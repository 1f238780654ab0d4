"""The pipeline per hop in one screen (`make status`): users staged, outbox events pending and
failed, Kafka end offsets against the stream's committed checkpoint offsets (the lag), rows and
dead letters in Cassandra, and the last run of each DAG. Each probe reports its own failure, so a
stopped service shows as such instead of hiding the rest."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include import names
from include.stream.checkpoint import committed_offsets

COUNT_BUDGET_S = 10.0  # Cassandra has no cheap exact count: page through for at most this long


@dataclass
class Probe:
    value: Any = None
    error: str | None = None


@dataclass
class PipelineStatus:
    staged_users: Probe = field(default_factory=Probe)
    outbox: Probe = field(default_factory=Probe)  # {"pending", "failed", "published"}
    kafka_end_offsets: Probe = field(default_factory=Probe)  # {partition: end offset}
    committed_offsets: Probe = field(default_factory=Probe)  # {partition: next offset}
    cassandra_rows: Probe = field(default_factory=Probe)  # {"users", "dead_letters", "exact"}
    last_runs: Probe = field(default_factory=Probe)  # {dag_id: run summary}

    def as_dict(self) -> dict[str, Any]:
        return {name: {"value": probe.value, "error": probe.error}
                for name, probe in vars(self).items()}


def probe(read: Callable[[], Any]) -> Probe:
    try:
        return Probe(read())
    except Exception as exc:  # a probe reports its failure; the screen still shows the rest
        return Probe(error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
                     if str(exc) else type(exc).__name__)


def lag(end_offsets: dict[int, int], committed: dict[int, int]) -> dict[int, int]:
    """Messages on the topic the stream has not committed yet, per partition."""
    return {p: max(0, end - committed.get(p, 0)) for p, end in sorted(end_offsets.items())}


def checkpoint_ahead(end_offsets: dict[int, int], committed: dict[int, int]) -> list[int]:
    """Partitions whose checkpoint offset is past the topic's end: the topic was recreated, and
    the stream job refuses to run (Spark's failOnDataLoss) until the checkpoint is reset."""
    return [p for p, offset in sorted(committed.items()) if offset > end_offsets.get(p, 0)]


def _fmt(number: Any) -> str:
    return f"{number:,}" if isinstance(number, int) else str(number)


def _partitions(offsets: dict[int, int]) -> str:
    return " ".join(f"p{p}={_fmt(o)}" for p, o in sorted(offsets.items())) or "-"


def _run(runs: dict[str, Any] | None, dag_id: str) -> str:
    run = (runs or {}).get(dag_id)
    if not run:
        return "last run: none"
    when = (run.get("end_date") or run.get("start_date") or "")[:19].replace("T", " ")
    return f"last run: {run['state']} ({run['run_type']}, {when or 'not started'})"


def render(status: PipelineStatus) -> str:
    def shown(p: Probe, fmt: Callable[[Any], str]) -> str:
        return f"unavailable ({p.error})" if p.error else fmt(p.value)

    runs = status.last_runs.value if not status.last_runs.error else None
    outbox = status.outbox
    kafka, committed = status.kafka_end_offsets, status.committed_offsets
    ahead: list[int] = []
    if kafka.error or committed.error:
        lag_text = "unknown"
    else:
        ahead = checkpoint_ahead(kafka.value, committed.value)
        per_partition = lag(kafka.value, committed.value)
        lag_text = f"{_fmt(sum(per_partition.values()))} ({_partitions(per_partition)})"
    rows = status.cassandra_rows
    lines = [
        "pipeline",
        f"  ingest  users staged {shown(status.staged_users, _fmt)}",
        f"          {_run(runs, names.PIPELINE_DAG_IDS[0])}",
        "  relay   outbox " + shown(outbox, lambda v: (
            f"pending {_fmt(v['pending'])}, failed {_fmt(v['failed'])}, "
            f"published {_fmt(v['published'])}")),
        f"          {_run(runs, names.PIPELINE_DAG_IDS[1])}",
        f"  kafka   {names.USERS_TOPIC} end offsets {shown(kafka, _partitions)}",
        f"  stream  committed offsets {shown(committed, _partitions)}; lag {lag_text}",
        "          cassandra " + shown(rows, lambda v: (
            f"rows {'' if v['exact'] else '>= '}{_fmt(v['users'])}, "
            f"dead letters {_fmt(v['dead_letters'])}")),
        f"          {_run(runs, names.PIPELINE_DAG_IDS[2])}",
    ]
    if ahead:
        lines.append(f"  (the stream's checkpoint is past the topic's end on "
                     f"{', '.join(f'p{p}' for p in ahead)}: the topic was recreated; "
                     "see README, Troubleshooting)")
    if runs is None and status.last_runs.error:
        lines.append(f"  (DAG runs unavailable: {status.last_runs.error})")
    return "\n".join(lines)


def count_rows(session: Any, table: str, key_column: str,
               budget_s: float = COUNT_BUDGET_S) -> tuple[int, bool]:
    """Counts by paging through the partition keys (a cluster-wide count(*) times out on large
    tables); stops after budget_s and says the count is a lower bound."""
    from cassandra.query import SimpleStatement

    deadline = time.monotonic() + budget_s
    counted = 0
    result = session.execute(SimpleStatement(f"SELECT {key_column} FROM {table}",
                                             fetch_size=5000))
    while True:
        counted += len(result.current_rows)
        if not result.has_more_pages:
            return counted, True
        if time.monotonic() > deadline:
            return counted, False
        result.fetch_next_page()


def gather(pg_connect: Callable[[], Any], cassandra_session: Callable[[], tuple[Any, Any]],
           kafka_config: dict[str, Any], checkpoint: Path,
           last_runs: Callable[[], dict[str, Any]],
           count_budget_s: float = COUNT_BUDGET_S) -> PipelineStatus:
    status = PipelineStatus()
    counts = probe(lambda: _postgres_counts(pg_connect))
    staged, outbox = counts.value if counts.error is None else (None, None)
    status.staged_users, status.outbox = Probe(staged, counts.error), Probe(outbox, counts.error)
    status.kafka_end_offsets = probe(lambda: kafka_end_offsets(kafka_config, names.USERS_TOPIC))
    status.committed_offsets = probe(lambda: committed_offsets(checkpoint))
    status.cassandra_rows = probe(lambda: _cassandra_counts(cassandra_session, count_budget_s))
    status.last_runs = probe(last_runs)
    return status


def _postgres_counts(pg_connect: Callable[[], Any]) -> tuple[int, dict[str, int]]:
    with pg_connect() as conn:
        staged = conn.execute("SELECT count(*) FROM staging.users").fetchone()[0]
        outbox = conn.execute(_OUTBOX_COUNTS).fetchone()
    return staged, dict(zip(("pending", "failed", "published"), outbox, strict=True))


_OUTBOX_COUNTS = """
SELECT count(*) FILTER (WHERE published_at IS NULL AND failed_at IS NULL),
       count(*) FILTER (WHERE failed_at IS NOT NULL),
       count(*) FILTER (WHERE published_at IS NOT NULL)
FROM staging.user_events"""


def kafka_end_offsets(config: dict[str, Any], topic: str) -> dict[int, int]:
    """The next offset to be written, per partition of the topic."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**config, "group.id": "userstream-status", "enable.auto.commit": False,
                         "socket.timeout.ms": 5000})
    try:
        metadata = consumer.list_topics(topic, timeout=5).topics[topic]
        if metadata.error is not None:
            raise RuntimeError(str(metadata.error))
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
                for p in sorted(metadata.partitions)}
    finally:
        consumer.close()


def _cassandra_counts(cassandra_session: Callable[[], tuple[Any, Any]],
                      budget_s: float = COUNT_BUDGET_S) -> dict[str, Any]:
    cluster, session = cassandra_session()
    try:
        users, exact = count_rows(session, f"{names.CASSANDRA_KEYSPACE}.users", "user_id",
                                  budget_s)
        dead, dead_exact = count_rows(session, f"{names.CASSANDRA_KEYSPACE}.users_dead_letter",
                                      "kafka_offset", budget_s)
        return {"users": users, "dead_letters": dead, "exact": exact and dead_exact}
    finally:
        cluster.shutdown()
