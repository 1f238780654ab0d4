"""What the test suite may not do to the pipeline's own data, checked from a snapshot taken when
the session starts: every outbox event, topic message and `userstream.users` row that appeared
since must be the pipeline's own work (an ingest run's event, the relay's message of it, the
stream's row of that), and every event marked published since must be on the real topic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Consumer, TopicPartition

from include import names
from include.relay.avro import decode, load_parsed_schema
from include.schema_registry import SchemaRegistryClient
from local_stack.services import Context, cassandra_session, kafka_client, pg_connect
from ops.pipeline_status import kafka_end_offsets


@dataclass(frozen=True)
class PipelineSnapshot:
    taken_at: datetime
    outbox_max_id: int
    topic_end_offsets: dict[int, int]


def take_snapshot(ctx: Context) -> PipelineSnapshot:
    with pg_connect(ctx, names.USERSTREAM_DATABASE) as conn:
        max_id = conn.execute("SELECT coalesce(max(id), 0) FROM staging.user_events").fetchone()[0]
    offsets = kafka_end_offsets(kafka_client(ctx.settings),
                                names.USERS_TOPIC)
    return PipelineSnapshot(datetime.now(UTC), max_id, offsets)


def messages_since(ctx: Context, start: dict[int, int]) -> list[tuple[int, str, int, int]]:
    """(event_id, user_id, partition, offset) of every message on the real topic past `start`."""
    kafka = kafka_client(ctx.settings)
    ends = kafka_end_offsets(kafka, names.USERS_TOPIC)
    registry = SchemaRegistryClient(ctx.settings.registry_url)
    writers: dict[int, dict] = {}
    consumer = Consumer({**kafka, "group.id": "pipeline-data-check",
                         "enable.auto.commit": False})
    found = []
    try:
        consumer.assign([TopicPartition(names.USERS_TOPIC, p, start.get(p, 0)) for p in ends])
        position = {p: start.get(p, 0) for p in ends}
        while any(position[p] < end for p, end in ends.items()):
            batch = consumer.consume(10_000, timeout=10)
            assert batch, f"the topic stopped short of its end offsets {ends}: at {position}"
            for message in batch:
                schema_id = int.from_bytes(message.value()[1:5], "big")
                if schema_id not in writers:
                    writers[schema_id] = load_parsed_schema(registry.schema_by_id(schema_id))
                record = decode(message.value(), writers[schema_id])
                found.append((record["event_id"], str(record["user_id"]), message.partition(),
                              message.offset()))
                position[message.partition()] = message.offset() + 1
    finally:
        consumer.close()
    return found


def foreign_changes(ctx: Context, before: PipelineSnapshot) -> list[str]:
    """What changed in the pipeline's data since `before` that the pipeline did not do."""
    problems = []
    messages = messages_since(ctx, before.topic_end_offsets)
    with pg_connect(ctx, names.USERSTREAM_DATABASE) as conn:
        orphans = conn.execute(
            "SELECT count(*) FROM staging.user_events e WHERE e.id > %s AND NOT EXISTS "
            "(SELECT 1 FROM staging.users u WHERE u.user_id = e.user_id)",
            (before.outbox_max_id,)).fetchone()[0]
        if orphans:
            problems.append(f"{orphans} outbox events of users ingest never staged")
        published = dict(conn.execute(
            "SELECT id, user_id::text FROM staging.user_events WHERE published_at >= %s",
            (before.taken_at,)).fetchall())
        ids = sorted({event_id for event_id, *_ in messages})
        outbox = dict(conn.execute("SELECT id, user_id::text FROM staging.user_events WHERE "
                                   "id = ANY(%s) AND published_at IS NOT NULL", (ids,)).fetchall())
    strangers = [m for m in messages if outbox.get(m[0]) != m[1]]
    if strangers:
        problems.append(f"{len(strangers)} messages on {names.USERS_TOPIC} are no published "
                        f"outbox event, e.g. {strangers[:3]}")
    missing = set(published) - {event_id for event_id, *_ in messages}
    if missing:
        problems.append(f"{len(missing)} events were marked published but are not on "
                        f"{names.USERS_TOPIC}, e.g. {sorted(missing)[:5]}")
    return problems + _foreign_rows(ctx, before)


def _foreign_rows(ctx: Context, before: PipelineSnapshot) -> list[str]:
    """Rows the stream wrote since `before` whose (user, event) the relay never published."""
    cluster, session = cassandra_session(ctx.settings, timeout=30)
    try:
        rows = session.execute(f"SELECT user_id, event_id, ingestion_time FROM "
                               f"{names.CASSANDRA_KEYSPACE}.users", timeout=120)
        since = before.taken_at.replace(tzinfo=None)
        fresh = [(str(r.user_id), r.event_id) for r in rows
                 if r.ingestion_time is not None and r.ingestion_time >= since]
    finally:
        cluster.shutdown()
    with pg_connect(ctx, names.USERSTREAM_DATABASE) as conn:
        events = dict(conn.execute(
            "SELECT id, user_id::text FROM staging.user_events WHERE id = ANY(%s) AND "
            "published_at IS NOT NULL", ([event_id for _, event_id in fresh],)).fetchall())
    unknown = [row for row in fresh if events.get(row[1]) != row[0]]
    if unknown:
        return [f"{len(unknown)} rows written to {names.CASSANDRA_KEYSPACE}.users come from no "
                f"event the relay published, e.g. {unknown[:3]}"]
    return []
