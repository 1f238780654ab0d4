"""What the pipeline page shows, read where it lives through the pipeline's own Airflow
connections: the per-hop numbers of `make status`, the hops' counts per minute over the last hour
(from their asset events), the latest messages of the topic decoded with their writer schema,
the latest dead letters and quarantined records with their reasons, and the alerts received.
Each part reports its own failure, so a stopped service shows as such instead of hiding the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from include import names
from ops.pipeline_status import PipelineStatus, lag, probe

HISTORY_MINUTES = 60
LATEST = 10
# The facts each hop's asset event carries about the users it moved.
HOP_COUNTS = {
    "userstream.staged_user_events": ("staged", lambda extra: extra.get("new_events", 0)),
    "userstream.users_created_topic": ("published", lambda extra: extra.get("events_sent", 0)),
    "userstream.cassandra_users": ("landed", lambda extra: extra.get("rows_written", 0)
                                   + extra.get("dead_letters", 0)),
}


def per_minute(events: Iterable[tuple[str, datetime, dict[str, Any]]], now: datetime,
               minutes: int = HISTORY_MINUTES) -> dict[str, list[int]]:
    """Users per minute and hop over the last `minutes`, oldest first, from (asset name,
    timestamp, extra) of the hops' asset events."""
    start = now - timedelta(minutes=minutes)
    series = {hop: [0] * minutes for hop, _ in HOP_COUNTS.values()}
    for name, timestamp, extra in events:
        if name not in HOP_COUNTS or not start <= timestamp < now or not _pipelines(extra):
            continue
        hop, count = HOP_COUNTS[name]
        series[hop][int((timestamp - start).total_seconds() // 60)] += int(count(extra or {}))
    return series


def _pipelines(extra: dict[str, Any] | None) -> bool:
    """False for an event about a scratch topic or keyspace (a test's or a replay's elsewhere)."""
    extra = extra or {}
    return (extra.get("topic", names.USERS_TOPIC) == names.USERS_TOPIC
            and extra.get("keyspace", names.CASSANDRA_KEYSPACE) == names.CASSANDRA_KEYSPACE)


def lag_history(series: dict[str, list[int]], current_lag: int | None) -> list[int] | None:
    """Messages published but not landed at the end of each minute: the current lag, walked back
    through what was published and landed since. None when the current lag is unknown."""
    if current_lag is None:
        return None
    history, level = [], current_lag
    for published, landed in zip(reversed(series["published"]), reversed(series["landed"]),
                                 strict=True):
        history.append(max(level, 0))
        level -= published - landed
    return list(reversed(history))


def latest_messages(kafka_config: dict[str, Any], registry_url: str, topic: str,
                    limit: int = LATEST) -> list[dict[str, Any]]:
    """The newest messages of the topic, each decoded with the writer schema its header names."""
    from confluent_kafka import Consumer, TopicPartition

    from include.relay.avro import decode, load_parsed_schema, split_frame
    from include.schema_registry import SchemaRegistryClient

    consumer = Consumer({**kafka_config, "group.id": names.PIPELINE_PAGE_GROUP,
                         "enable.auto.commit": False, "socket.timeout.ms": 5000})
    try:
        partitions = consumer.list_topics(topic, timeout=5).topics[topic].partitions
        assigned = []
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)
            if high > low:
                assigned.append(TopicPartition(topic, p, max(low, high - limit)))
        consumer.assign(assigned)
        found = consumer.consume(limit * max(len(assigned), 1), timeout=5) if assigned else []
    finally:
        consumer.close()
    registry, writers = SchemaRegistryClient(registry_url), {}
    messages = []
    for message in sorted((m for m in found if m.error() is None),
                          key=lambda m: m.timestamp()[1], reverse=True)[:limit]:
        entry = {"partition": message.partition(), "offset": message.offset(),
                 "timestamp": datetime.fromtimestamp(message.timestamp()[1] / 1000, UTC),
                 "key": (message.key() or b"").decode("utf-8", "replace")}
        try:
            schema_id, _ = split_frame(message.value())
            if schema_id not in writers:
                writers[schema_id] = load_parsed_schema(registry.schema_by_id(schema_id))
            entry.update(schema_id=schema_id, record=decode(message.value(), writers[schema_id]))
        except Exception as exc:  # a poison message is shown as such, not decoded
            entry["error"] = f"{type(exc).__name__}: {exc}"[:200]
        messages.append(entry)
    return messages


def latest_dead_letters(session: Any, partitions: Iterable[int], limit: int = LATEST,
                        keyspace: str = names.CASSANDRA_KEYSPACE) -> list[dict[str, Any]]:
    """The newest dead letters of the pipeline's topic (by offset within each partition)."""
    query = session.prepare(
        f"SELECT kafka_partition, kafka_offset, error, schema_id, dead_lettered_at "
        f"FROM {keyspace}.users_dead_letter WHERE topic = ? AND kafka_partition = ? "
        f"ORDER BY kafka_offset DESC LIMIT {int(limit)}")
    rows = [row._asdict() for p in partitions
            for row in session.execute(query, [names.USERS_TOPIC, p])]
    rows.sort(key=lambda r: r["dead_lettered_at"] or datetime.min, reverse=True)
    return rows[:limit]


_QUARANTINED = """
(SELECT 'ingest' AS hop, rejected_at AS at, coalesce(user_id, '') AS key, reason
 FROM staging.rejected_users ORDER BY id DESC LIMIT %(limit)s)
UNION ALL
(SELECT 'relay', failed_at, user_id::text || ' (event ' || id || ')', failure
 FROM staging.user_events WHERE failed_at IS NOT NULL ORDER BY failed_at DESC LIMIT %(limit)s)
ORDER BY at DESC LIMIT %(limit)s"""


def latest_quarantined(conn: Any, limit: int = LATEST) -> list[dict[str, Any]]:
    """Records ingest rejected and events the relay marked failed, newest first, with reasons."""
    rows = conn.execute(_QUARANTINED, {"limit": limit}).fetchall()
    return [dict(zip(("hop", "at", "key", "reason"), row, strict=True)) for row in rows]


def received_alerts(webhook_url: str | None, limit: int = LATEST) -> list[dict[str, Any]]:
    """The newest alerts, from a webhook receiver that lists what it got (local mode's inbox
    answers GET with them); a real chat or mail webhook does not, and the page says so."""
    import requests

    if not webhook_url:
        raise RuntimeError("no alerts_webhook connection: alerts go nowhere but the task logs")
    response = requests.get(webhook_url.rstrip("/"), timeout=5)
    response.raise_for_status()
    entries = response.json()
    if not isinstance(entries, list):
        raise RuntimeError(f"{webhook_url} does not list the alerts it received")
    return [{"received_at": e.get("received_at"), **(e.get("alert") or {})}
            for e in entries[-limit:]][::-1]


def current_lag(status: PipelineStatus) -> int | None:
    kafka, committed = status.kafka_end_offsets, status.committed_offsets
    if kafka.error or committed.error:
        return None
    return sum(lag(kafka.value, committed.value).values())


def page_data(status: PipelineStatus, asset_events: Callable[[], list],
              pg_connect: Callable[[], Any], cassandra_session: Callable[[], tuple[Any, Any]],
              kafka_config: dict[str, Any], registry_url: Callable[[], str],
              webhook_url: Callable[[], str | None], now: datetime) -> dict[str, Any]:
    """Everything the page shows, each part a probe: {"value": ..., "error": ...}."""
    history = probe(lambda: per_minute(asset_events(), now))
    if history.error is None:
        history.value["lag"] = lag_history(history.value, current_lag(status))
    partitions = sorted((status.kafka_end_offsets.value or {0: 0}).keys())

    def dead_letters() -> list[dict[str, Any]]:
        cluster, session = cassandra_session()
        try:
            return latest_dead_letters(session, partitions)
        finally:
            cluster.shutdown()

    def quarantined() -> list[dict[str, Any]]:
        with pg_connect() as conn:
            return latest_quarantined(conn)

    parts = {
        "history": history,
        "latest_messages": probe(lambda: latest_messages(kafka_config, registry_url(),
                                                         names.USERS_TOPIC)),
        "dead_letters": probe(dead_letters),
        "quarantined": probe(quarantined),
        "alerts": probe(lambda: received_alerts(webhook_url())),
    }
    return {"generated_at": now.isoformat(), "status": status.as_dict(),
            "lag": current_lag(status),
            **{name: {"value": p.value, "error": p.error} for name, p in parts.items()}}


def as_json(data: dict[str, Any]) -> str:
    return json.dumps(data, default=str, sort_keys=True)

