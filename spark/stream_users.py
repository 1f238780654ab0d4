"""Hop 3: Kafka `users_created` (Confluent-framed Avro) -> Cassandra `userstream.users`.

A Spark Structured Streaming job run by spark-submit with the project's jar set
(spark-sql-kafka, spark-avro, spark-cassandra-connector). Each micro-batch:

1. splits the Confluent framing: magic byte 0, a schema id (unsigned 32-bit), the Avro body;
2. decodes each body with its *writer* schema, fetched from the registry by id (cached), resolved
   to the reader schema `include/schemas/user_created.avsc`, so evolved schemas keep working;
3. validates each record against the record contract (`include/record_contract.py`, the rule
   ingest and the relay apply too) and keeps the newest event per user;
4. upserts `users` through the connector, each row with a write timestamp derived from its event
   id (`WRITE_TIME`), so Cassandra keeps the newest outbox event of a user whatever order events
   arrive in: across micro-batches, on a replay of any offsets, from several partitions or
   relays;
5. writes every message it cannot frame, decode, validate or write to `users_dead_letter` with the
   reason, topic, partition, offset and raw bytes. The job never stops on input: Avro's length
   limits (set by the launcher) turn a body that declares a huge string into a decode failure.
   A registry or Cassandra outage still fails the run.

The table's columns are the .avsc's fields plus where each row came from (`table_columns`). Progress
is checkpointed; by default the job drains what is in the topic and exits (`--trigger
available-now`); `--trigger processing-time` runs a long-lived query, which `--stop-when-idle-s`
ends once no message came for that long (and `--max-run-s` ends in any case), between two
micro-batches. A JSON report (rows, dead letters, offsets, timings) goes to `--report`.

The job logs in to Cassandra and Kafka with the logins in its environment
(`USERSTREAM_CASSANDRA_USERNAME` and `_PASSWORD`, `USERSTREAM_KAFKA_SECURITY`, set by the
launcher), never from its command line.

This file runs inside the Spark runtime's Python, not Airflow's. Of `include` it imports only the
names, the record contract, the query's records and the Kafka login line, which need nothing
beyond the standard library.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))  # for the record contract, the one shared rule

from include import names  # noqa: E402
from include.kafka_jaas import jaas_config  # noqa: E402
from include.record_contract import (  # noqa: E402
    INT_RANGE,
    TIMESTAMP_MS_RANGE,
    RecordContract,
    table_columns,
)
from include.stream import query as query_records  # noqa: E402

log = logging.getLogger("userstream.stream_users")

READER_SCHEMA = PROJECT_ROOT / "include" / "schemas" / "user_created.avsc"

UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# Confluent schema ids are non-negative Java ints: a larger id cannot be in any registry.
MAX_SCHEMA_ID = 2**31 - 1
MAX_DEAD_LETTER_EXAMPLES = 10
# A micro-batch of this many messages means a backlog (a window is 500): it then lasts at least
# BACKLOG_BATCH_S (`backlog_pause_s`). Without it, the 1 s trigger drained a 200,000-user backlog
# in 12 micro-batches where the 5 s trigger took 5-6, at 159 µs of Spark CPU per user against
# 112; with it 115-125 (`bench.pipeline_benchmark --users 200000`, bench/RESULTS.md).
BACKLOG_MESSAGES = 5_000
BACKLOG_BATCH_S = 5.0
# Each row's Cassandra write timestamp: the outbox event id (the outbox's own order, in which a
# user's events are committed) on top of 2^52 microseconds (the year 2112), so it is later than any
# wall-clock timestamp a row was written with before, and the newest event of a user always wins.
# The record contract keeps event_id within 1..2^62, so the sum never overflows.
WRITE_TIME_BASE = 2**52
WRITE_TIME = f"{WRITE_TIME_BASE} + record.event_id"
# The moment each row is handed to the Cassandra writer (evaluated per row, not per batch).
HANDED_TO_WRITER = ("timestamp_millis(cast(reflect('java.lang.System', 'currentTimeMillis') "
                    "as bigint))")


@dataclass
class StreamReport:
    """What one run of the job did; written as JSON for the Airflow task and the benchmark."""

    rows_written: int = 0
    dead_letters: int = 0
    # Valid messages of a user that a newer event of the same micro-batch replaced: every message
    # is a row written, a dead letter or superseded (the landing check adds them up).
    superseded: int = 0
    batches: int = 0
    messages: int = 0
    end_offsets: dict[str, int] = field(default_factory=dict)
    sample_user_ids: list[str] = field(default_factory=list)
    dead_letter_examples: list[dict[str, Any]] = field(default_factory=list)
    schema_ids: list[int] = field(default_factory=list)
    startup_seconds: float = 0.0
    processing_seconds: float = 0.0
    total_seconds: float = 0.0
    first_batch_started: float | None = None


@dataclass(frozen=True)
class BatchSurvey:
    """A micro-batch's messages counted by partition and writer schema id (None: not framed)."""

    offsets: dict[int, tuple[int, int]]  # partition -> (first offset, last offset)
    by_schema: dict[int | None, int]  # schema id -> messages

    @classmethod
    def from_rows(cls, rows: list) -> BatchSurvey:
        """From (partition, schema_id, first, last, messages) rows, one per pair."""
        offsets: dict[int, tuple[int, int]] = {}
        by_schema: dict[int | None, int] = {}
        for partition, schema_id, first, last, messages in rows:
            known = offsets.get(int(partition), (first, last))
            offsets[int(partition)] = (int(min(known[0], first)), int(max(known[1], last)))
            by_schema[schema_id] = by_schema.get(schema_id, 0) + messages
        return cls(offsets, by_schema)

    @property
    def messages(self) -> int:
        return sum(self.by_schema.values())

    @property
    def schema_ids(self) -> list[int]:
        return sorted(i for i in self.by_schema if i is not None)

    def undecodable(self, readable: dict[int, Any]) -> int:
        """Messages not framed, or framed with a schema id that cannot be read."""
        return sum(n for i, n in self.by_schema.items() if i is None or i not in readable)


class SchemaRegistry:
    """Writer schemas by id from a Confluent-compatible registry, cached for the job's life."""

    def __init__(self, url: str, attempts: int = 5):
        self.url = url.rstrip("/")
        self.attempts = attempts
        self._cache: dict[int, dict[str, Any] | None] = {}

    def schema(self, schema_id: int) -> dict[str, Any] | None:
        """The registry's entry (`schema` text, `schemaType`), or None when it has no such id (a
        poison message). Any other failure raises: a registry outage must fail the batch, not
        dead-letter good data."""
        if schema_id not in self._cache:
            self._cache[schema_id] = self._fetch(schema_id)
        return self._cache[schema_id]

    def _fetch(self, schema_id: int) -> dict[str, Any] | None:
        url = f"{self.url}/schemas/ids/{schema_id}"
        for attempt in range(1, self.attempts + 1):
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return None
                error: Exception = exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                error = exc
            if attempt == self.attempts:
                raise RuntimeError(f"schema registry {url} failed {attempt} times: {error}")
            time.sleep(min(2 ** attempt, 10))
        raise AssertionError("unreachable")


def backlog_pause_s(trigger: str, messages: int, started: float, now: float) -> float:
    """How long a micro-batch of the processing-time query waits before it ends: under a
    backlog it lasts `BACKLOG_BATCH_S`, so that the next one reads a larger slice. The trigger
    fires every second to land a window quickly, and without this drained a backlog in many
    small micro-batches, each with its fixed cost (see `BACKLOG_MESSAGES`)."""
    if trigger != "processing-time" or messages < BACKLOG_MESSAGES:
        return 0.0
    return max(0.0, started + BACKLOG_BATCH_S - now)


def _union(frames: list):
    return functools.reduce(lambda left, right: left.unionByName(right), frames)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Every setting is required: the launcher (`include/stream/job.py`, `StreamJobConfig`)
    holds the one set of defaults, so the job cannot run on others of its own."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag in ("--bootstrap-servers", "--topic", "--registry-url", "--cassandra-host",
                 "--keyspace", "--interval"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--cassandra-port", type=int, required=True)
    parser.add_argument("--checkpoint", required=True, help="durable folder for the offsets")
    parser.add_argument("--trigger", choices=["available-now", "processing-time"], required=True)
    parser.add_argument("--max-offsets-per-trigger", type=int, required=True)
    parser.add_argument("--stop-when-idle-s", type=float, required=True,
                        help="processing-time: stop once no message came for this long (0: never)")
    parser.add_argument("--max-run-s", type=float, required=True,
                        help="processing-time: stop after this long in any case (0: never)")
    parser.add_argument("--reader-schema", default=str(READER_SCHEMA),
                        help="the pipeline's .avsc unless a test gives another")
    parser.add_argument("--starting-offsets", default="earliest",
                        help="only used on a fresh checkpoint")
    parser.add_argument("--report", help="write the run's JSON report here")
    parser.add_argument("--query-dir",
                        help="the long-lived query's heartbeat, batch ledger and stop request "
                             "(include/stream/query.py); with it the query runs until stopped")
    parser.add_argument("--stall-after-s", type=float, required=True,
                        help="with --query-dir: a micro-batch running this long fails the job")
    return parser.parse_args(argv)


class UsersBatchWriter:
    """The foreachBatch body: frame, decode, validate, upsert, dead-letter, count."""

    def __init__(self, args: argparse.Namespace, reader_schema: str, report: StreamReport):
        self.args = args
        self.reader_schema = reader_schema
        parsed = json.loads(reader_schema)
        self.contract = RecordContract.from_schema(parsed)
        self.columns = [name for name, _ in table_columns(parsed)]
        self.registry = SchemaRegistry(args.registry_url)
        self.report = report
        self._unusable: dict[int, str | None] = {}  # schema id -> why it cannot be read, or None
        self._table_complete = False
        self._batch_offsets: dict[int, tuple[int, int]] = {}
        self._batch_messages = 0
        self._batch_examples: list[dict[str, Any]] = []

    def __call__(self, batch, batch_id: int) -> None:
        from pyspark.sql import functions as F

        started = time.time()
        if self.report.first_batch_started is None:
            self.report.first_batch_started = started
        framed = batch.select(
            "topic", "partition", "offset", "timestamp", "key", "value",
            F.coalesce(F.length("value") >= 5, F.lit(False)).alias("long_enough"),
            F.hex(F.substring("value", 1, 1)).alias("magic"),
            F.conv(F.hex(F.substring("value", 2, 4)), 16, 10).cast("long").alias("schema_id"),
        ).persist()
        cached = [framed]
        before = (self.report.messages, self.report.rows_written, self.report.dead_letters,
                  self.report.superseded)
        self._batch_examples = []
        try:
            self._write(framed, batch_id, cached, F)
        finally:
            for frame in cached:
                frame.unpersist()
        self.report.processing_seconds += time.time() - started
        time.sleep(backlog_pause_s(self.args.trigger, self._batch_messages, started, time.time()))
        if self.args.query_dir:
            after = (self.report.messages, self.report.rows_written, self.report.dead_letters,
                     self.report.superseded)
            messages, rows, dead, superseded = (a - b for a, b in zip(after, before, strict=True))
            query_records.write_ledger_entry(Path(self.args.query_dir), {
                "batch_id": batch_id, "topic": self.args.topic, "offsets": self._batch_offsets,
                "messages": messages, "rows_written": rows, "dead_letters": dead,
                "superseded": superseded, "dead_letter_examples": self._batch_examples,
                "started_at": started, "finished_at": time.time()})

    def _write(self, framed, batch_id: int, cached: list, F) -> None:
        survey = self._survey(framed, F)
        readable = {i: self.registry.schema(i)["schema"] for i in survey.schema_ids
                    if self._why_unusable(i) is None}
        undecodable, decoded_parts = self._split_by_schema(framed, F, survey.schema_ids,
                                                           readable)
        dead = [undecodable]
        users_written = invalid_count = 0
        if decoded_parts:
            users_written, invalid_count, invalid = self._write_users(
                _union(decoded_parts), cached, F)
            dead.append(invalid)
        # Dead letters are rare: counted from the survey, read again only when there are some.
        dead_count = survey.undecodable(readable) + invalid_count
        if dead_count:
            self._write_dead_letters(_union([frame.select(*self._dead_letter_columns(F))
                                             for frame in dead]))
        self._count(survey, batch_id, users_written, dead_count)

    @staticmethod
    def _survey(framed, F) -> BatchSurvey:
        """One Spark job over the cached batch for its offsets per partition, its schema ids and
        its unframed messages, where there were three (13 micro-batches of 500: 22.7 s of
        processing against 24.9 s, one run each, `bench.stream_benchmark --records 6000
        --batch-size 500`)."""
        well_framed = F.col("long_enough") & (F.col("magic") == "00")
        return BatchSurvey.from_rows(
            framed.groupBy("partition", F.when(well_framed, F.col("schema_id")).alias("schema_id"))
            .agg(F.min("offset").alias("first"), F.max("offset").alias("last"),
                 F.count(F.lit(1)).alias("messages")).collect())

    def _split_by_schema(self, framed, F, schema_ids: list[int],
                         readable: dict[int, str]) -> tuple[Any, list]:
        """The messages that cannot be decoded (with `error`), and one frame per readable writer
        schema with its decoded `record`."""
        from pyspark.sql.avro.functions import from_avro

        well_framed = F.col("long_enough") & (F.col("magic") == "00")
        # The body is cut from the cached value where it is decoded, not cached a second time.
        body = F.expr("substring(value, 6, length(value) - 5)")
        decoded_parts = [
            framed.where(well_framed & (F.col("schema_id") == schema_id)).withColumn(
                "record", from_avro(body, writer_schema,
                                    {"mode": "PERMISSIVE", "avroSchema": self.reader_schema}))
            for schema_id, writer_schema in readable.items()]
        reasons = [F.lit(x) for i in schema_ids if i not in readable
                   for x in (i, self._unusable[i])]
        error = (
            F.when(~F.col("long_enough"), F.lit("message shorter than the 5-byte Confluent header"))
            .when(F.col("magic") != "00",
                  F.concat(F.lit("magic byte is 0x"), F.col("magic"), F.lit(", expected 0x00")))
            .when(~F.col("schema_id").isin(list(readable)) if readable else F.lit(True),
                  F.element_at(F.create_map(*reasons), F.col("schema_id")) if reasons
                  else F.lit(None))
        )
        undecodable = framed.where(error.isNotNull()).withColumn("error", error)
        return undecodable, decoded_parts

    def _why_unusable(self, schema_id: int) -> str | None:
        """Why messages of this schema id cannot be decoded (None: they can), once per id. A
        writer schema the reader cannot resolve needs no reason here: each body then fails to
        decode, and is dead-lettered for that."""
        if schema_id not in self._unusable:
            self._unusable[schema_id] = self._unusable_reason(schema_id)
        return self._unusable[schema_id]

    def _unusable_reason(self, schema_id: int) -> str | None:
        if schema_id > MAX_SCHEMA_ID:
            return f"schema id {schema_id} is beyond the registry's range (ids are Java ints)"
        entry = self.registry.schema(schema_id)
        if entry is None:
            return f"schema id {schema_id} is not in the schema registry"
        kind = entry.get("schemaType", "AVRO")
        return None if kind == "AVRO" else f"schema id {schema_id} is a {kind} schema, not Avro"

    def _write_users(self, decoded, cached: list, F) -> tuple[int, int, Any]:
        """Upserts the valid users; returns the users written, the invalid count and the
        invalid messages (with `error`)."""
        reason = self._invalid_reason
        if missing := self._missing_columns(decoded.sparkSession):
            reason = F.coalesce(reason, F.lit(
                f"table {self.args.keyspace}.users lacks column(s) {', '.join(missing)} of the "
                "reader schema; provisioning adds them (ALTER TABLE ... ADD)"))
        checked = decoded.withColumn("error", reason).persist()
        cached.append(checked)  # decoded once: counts, users and dead letters read this cache
        valid = checked.where(F.col("error").isNull())
        # One aggregate instead of caching the shaped users to count them: a row per user
        # lands (the newest event wins), so the users written are the distinct valid ids.
        counts = checked.agg(
            F.countDistinct(F.when(F.col("error").isNull(), F.lower("record.user_id")))
            .alias("users"),
            F.count(F.col("error")).alias("invalid"),
            F.count(F.lit(1)).alias("messages")).first()
        users_written, invalid_count = counts["users"], counts["invalid"]
        repeats = counts["messages"] - invalid_count - users_written
        self.report.superseded += repeats
        if users_written:
            self._save(self._shape(valid, F, newest_only=repeats > 0), "users",
                       writetime="write_time")
            if len(self.report.sample_user_ids) < 20:
                self.report.sample_user_ids += [
                    r.user_id for r in valid.select("record.user_id")
                    .limit(20 - len(self.report.sample_user_ids)).collect()]
        return users_written, invalid_count, checked.where(F.col("error").isNotNull())

    def _missing_columns(self, spark) -> list[str]:
        """The reader schema's columns the `users` table lacks (the .avsc gained a field that
        provisioning has not added yet). Read each batch until none is missing, then never."""
        if self._table_complete:
            return []
        present = set(spark.read.format("org.apache.spark.sql.cassandra")
                      .options(keyspace=self.args.keyspace, table="users").load().columns)
        missing = [name for name in self.columns if name not in present]
        self._table_complete = not missing
        return missing

    @functools.cached_property
    def _invalid_reason(self):
        """Why a decoded message is not a valid record (null: it is), by the record contract.
        Built once per job: its few hundred calls into the JVM took 0.25 s, a quarter of a
        micro-batch of 500 messages (`bench.stream_benchmark --records 6000 --batch-size 500`)."""
        from pyspark.sql import functions as F

        contract = self.contract
        # PERMISSIVE from_avro yields a struct of nulls for a body it cannot decode (a declared
        # length past Avro's limits included), and a required field is never null after a
        # successful decode.
        undecoded = F.col("record").isNull()
        for rule in contract.fields:
            if not rule.nullable:
                undecoded = undecoded | F.col(f"record.{rule.name}").isNull()
        reason = F.when(undecoded, F.concat(
            F.lit("Avro body does not decode with writer schema "),
            F.col("schema_id").cast("string")))
        strings = [rule.name for rule in contract.fields if rule.kind in ("string", "uuid")]
        too_long = [F.when(F.length(f"record.{n}") > contract.max_string_length, F.lit(n))
                    for n in strings]
        reason = reason.when(F.coalesce(*too_long).isNotNull(), F.concat(
            F.lit("'"), F.coalesce(*too_long),
            F.lit(f"' is longer than {contract.max_string_length} characters")))
        # All strings searched at once; the field is named only for a record that fails.
        forbidden = contract.forbidden_characters
        holders = [F.when(F.col(f"record.{n}").rlike(forbidden), F.lit(n)) for n in strings]
        reason = reason.when(
            F.concat_ws("", *[F.col(f"record.{n}") for n in strings]).rlike(forbidden),
            F.concat(F.lit("'"), F.coalesce(*holders), F.lit("' holds a forbidden character")))
        for rule in contract.fields:
            column = F.col(f"record.{rule.name}")
            if rule.kind == "uuid":
                bad, problem = ~F.lower(column).rlike(UUID_PATTERN), "is not a UUID"
            elif rule.kind == "double":
                bad = F.isnan(column) | (F.abs(column) == float("inf"))
                problem = "is not a finite number"
            elif rule.value_range:
                bad = ~column.between(*rule.value_range)
                problem = "is outside {}..{}".format(*rule.value_range)
            elif rule.kind == "timestamp-millis":
                bad = ~F.unix_millis(column).between(*TIMESTAMP_MS_RANGE)
                problem = "is outside years 1900..9999"
            else:
                continue
            reason = reason.when(bad, F.lit(f"'{rule.name}' {problem}"))
        return reason

    def _write_dead_letters(self, dead_letters) -> None:
        self._save(dead_letters, "users_dead_letter")
        for row in dead_letters.select("kafka_partition", "kafka_offset", "error") \
                .limit(5).collect():
            log.warning("dead letter p%s@%s: %s", row.kafka_partition, row.kafka_offset,
                        row.error)
            example = {"partition": row.kafka_partition, "offset": row.kafka_offset,
                       "reason": row.error}
            self._batch_examples.append(example)
            if len(self.report.dead_letter_examples) < MAX_DEAD_LETTER_EXAMPLES:
                self.report.dead_letter_examples.append(example)

    def _count(self, survey: BatchSurvey, batch_id: int, users_written: int,
               dead_count: int) -> None:
        self._batch_offsets, self._batch_messages = survey.offsets, survey.messages
        for partition, (_, last) in survey.offsets.items():
            key = f"{self.args.topic}:{partition}"
            self.report.end_offsets[key] = max(last, self.report.end_offsets.get(key, -1))
        self.report.batches += 1
        self.report.messages += survey.messages
        self.report.rows_written += users_written
        self.report.dead_letters += dead_count
        self.report.schema_ids = sorted(set(self.report.schema_ids) | set(survey.schema_ids))
        log.warning("batch %d: %d messages -> %d users upserted, %d dead letters (totals: %d, %d)",
                    batch_id, survey.messages, users_written, dead_count,
                    self.report.rows_written, self.report.dead_letters)

    def _save(self, frame, table: str, writetime: str | None = None) -> None:
        """Appends through the connector: an upsert by the table's primary key; with `writetime`,
        each row's cells get that column's value as their timestamp."""
        writer = (frame.write.format("org.apache.spark.sql.cassandra")
                  .options(keyspace=self.args.keyspace, table=table).mode("append"))
        if writetime:
            writer = writer.option("writetime", writetime)
        writer.save()

    def _shape(self, checked, F, newest_only: bool):
        """Typed columns in the table's order, and the row's write timestamp. With `newest_only`
        (a user has several events in the batch) only the newest event per user is kept: the
        ranking shuffles and sorts the whole batch, so a batch of distinct users skips it."""
        from pyspark.sql import Window

        columns = []
        for name in self.columns:
            if name == "kafka_partition":
                columns.append(F.col("partition").alias(name))
            elif name == "kafka_offset":
                columns.append(F.col("offset").alias(name))
            elif name == "ingestion_time":
                columns.append(F.expr(HANDED_TO_WRITER).alias(name))
            elif name == "user_id":  # one uuid in either case: ranked as one user
                columns.append(F.lower(F.col(f"record.{name}")).alias(name))
            else:
                columns.append(F.col(f"record.{name}").alias(name))
        shaped = checked.select(*columns, F.expr(WRITE_TIME).alias("write_time"))
        if not newest_only:
            return shaped
        newest_first = Window.partitionBy("user_id").orderBy(F.col("event_id").desc())
        return (shaped
                .withColumn("_rank", F.row_number().over(newest_first))
                .where(F.col("_rank") == 1).drop("_rank"))

    @staticmethod
    def _dead_letter_columns(F) -> list:
        # The table's schema_id is a (signed) int: an id beyond it is named in the error only.
        schema_id = F.when(F.col("schema_id") <= INT_RANGE[1], F.col("schema_id")).cast("int")
        return [F.col("topic"), F.col("partition").alias("kafka_partition"),
                F.col("offset").alias("kafka_offset"), F.col("error"),
                schema_id.alias("schema_id"), F.col("key").alias("raw_key"),
                F.col("value").alias("raw_value"), F.col("timestamp").alias("kafka_timestamp"),
                F.current_timestamp().alias("dead_lettered_at")]


def quiet_batch_warnings(spark) -> None:
    """The driver logs every server warning with the request's bound values (2 KB a line). Our
    unlogged batches of single-row partitions are deliberate (halved Cassandra's CPU per row), and
    a Cassandra that warns about them, as compose's stock one does, made 5,757 such lines (15.7 MB
    of task log) in one 200,000-user run. Errors are still logged."""
    jvm = spark.sparkContext._jvm
    jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
        "com.datastax.oss.driver.internal.core.cql.CqlRequestHandler",
        jvm.org.apache.logging.log4j.Level.ERROR)


def cassandra_login(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The connector's login settings from the environment (Spark redacts `*password*` settings
    wherever it shows them); none when the launcher gave no role."""
    environ = os.environ if environ is None else environ
    username = environ.get(names.STREAM_CASSANDRA_USERNAME_ENV)
    if not username:
        return {}
    return {"spark.cassandra.auth.username": username,
            "spark.cassandra.auth.password": environ.get(names.STREAM_CASSANDRA_PASSWORD_ENV, "")}


def kafka_login(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The Kafka source's login options from the environment's librdkafka-named settings
    (`security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password`, and with TLS
    `ssl.ca.location`, the PEM file of the CA to trust); none without."""
    environ = os.environ if environ is None else environ
    security = json.loads(environ.get(names.STREAM_KAFKA_SECURITY_ENV) or "{}")
    if not security.get("sasl.username"):
        return {}
    options = {"kafka.security.protocol": security["security.protocol"],
               "kafka.sasl.mechanism": security["sasl.mechanism"],
               "kafka.sasl.jaas.config": jaas_config(security)}
    if ca := security.get("ssl.ca.location"):
        options |= {"kafka.ssl.truststore.type": "PEM", "kafka.ssl.truststore.location": ca}
    return options


def run(args: argparse.Namespace) -> StreamReport:
    from pyspark.sql import SparkSession

    started = time.time()
    report = StreamReport()
    reader_schema = Path(args.reader_schema).read_text()
    folder = Path(args.query_dir) if args.query_dir else None
    lock = hold_query_lock(folder) if folder else None  # held until the process ends
    spark = (SparkSession.builder.appName("userstream-stream-users")
             .config("spark.cassandra.connection.host", args.cassandra_host)
             .config("spark.cassandra.connection.port", str(args.cassandra_port))
             .config(map=cassandra_login())
             .config("spark.sql.shuffle.partitions", "4")
             # Avro timestamps are proleptic Gregorian, as every writer of ours writes them: read
             # them as they are (the default refuses those before 1900 as ambiguous), and let the
             # record contract judge the year.
             .config("spark.sql.avro.datetimeRebaseModeInRead", "CORRECTED")
             .getOrCreate())
    spark.sparkContext.setLogLevel("WARN")
    quiet_batch_warnings(spark)
    messages = (spark.readStream.format("kafka")
                .option("kafka.bootstrap.servers", args.bootstrap_servers)
                .option("subscribe", args.topic)
                .option("startingOffsets", args.starting_offsets)
                .option("maxOffsetsPerTrigger", str(args.max_offsets_per_trigger))
                .options(**kafka_login())
                .load())
    writer = (messages.writeStream.queryName("stream_users")
              .foreachBatch(UsersBatchWriter(args, reader_schema, report))
              .option("checkpointLocation", args.checkpoint))
    if args.trigger == "available-now":
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=args.interval)
    query = writer.start()
    if folder:
        supervise(query, report, folder, started, args)
    elif args.trigger == "processing-time" and (args.stop_when_idle_s or args.max_run_s):
        _run_until_idle(query, report, args.stop_when_idle_s, args.max_run_s, started)
    else:
        query.awaitTermination()
    report.total_seconds = time.time() - started
    report.startup_seconds = ((report.first_batch_started or time.time()) - started)
    spark.stop()
    if lock:
        lock.close()
    return report


def hold_query_lock(folder: Path, wait_s: float = 60.0):
    """An exclusive lock on the query's folder, so that one query at a time runs on its
    checkpoint. A predecessor that was killed may take a few seconds to let go: waits that long,
    then fails. Clears a stop request left for a query that has ended."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    handle = (folder / "lock").open("w")
    deadline = time.time() + wait_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.time() > deadline:
                raise SystemExit(f"another stream query holds {folder / 'lock'}; "
                                 f"one query at a time runs on a checkpoint") from None
            time.sleep(2)
    query_records.stop_path(folder).unlink(missing_ok=True)
    return handle


def supervise(query, report: StreamReport, folder: Path, started: float,
              args: argparse.Namespace) -> None:
    """The long-lived query's loop: a heartbeat every few seconds; on a stop request, a stop
    between two micro-batches (or after 30 s of a backlog, mid-batch: an uncommitted batch is
    read again next time and its upserts rewrite the same rows); and a failure when no
    micro-batch finished for `--stall-after-s` while one was running, so that Airflow's retry
    restarts the query from its checkpoint."""
    stop = query_records.stop_path(folder)
    last_beat = stop_seen = 0.0
    progress_at, batches_seen, reason = time.time(), report.batches, "ended"

    def beat(state: str) -> None:
        query_records.write_json(query_records.heartbeat_path(folder), {
            "state": state, "reason": reason, "written_at": time.time(), "started_at": started,
            "driver_pid": os.getppid(), "python_pid": os.getpid(), "topic": args.topic,
            "checkpoint": args.checkpoint, "batches": report.batches,
            "messages": report.messages, "rows_written": report.rows_written,
            "dead_letters": report.dead_letters})

    try:
        beat(query_records.RUNNING)
        while not query.awaitTermination(1):  # raises the query's error, if it failed
            now = time.time()
            active = query.status["isTriggerActive"]
            if report.batches != batches_seen or not active:
                progress_at, batches_seen = now, report.batches
            if stop.exists():
                stop_seen = stop_seen or now
                if not active or now - stop_seen > 30:
                    reason = query_records.STOP_REQUESTED
                    log.warning("stopping the query: %s (%d batches, %d messages)", reason,
                                report.batches, report.messages)
                    query.stop()
                    break
            if now - progress_at > args.stall_after_s:
                raise RuntimeError(f"the query stalled: a micro-batch has run "
                                   f"{now - progress_at:.0f}s (--stall-after-s "
                                   f"{args.stall_after_s:.0f})")
            if now - last_beat >= query_records.HEARTBEAT_EVERY_S:
                beat(query_records.RUNNING)
                last_beat = now
        query.awaitTermination()
    except BaseException as exc:
        reason = f"failed: {type(exc).__name__}: {exc}"[:500]
        raise
    finally:
        beat(query_records.STOPPED)
        stop.unlink(missing_ok=True)


def should_stop(now: float, last_active: float, started: float, idle_s: float,
                max_run_s: float) -> str | None:
    """Why a long-lived query should end now, or None: idle for `idle_s`, or up `max_run_s`."""
    if idle_s and now - last_active >= idle_s:
        return f"no message for {now - last_active:.0f}s"
    if max_run_s and now - started >= max_run_s:
        return f"ran {now - started:.0f}s, the limit"
    return None


def _run_until_idle(query, report: StreamReport, idle_s: float, max_run_s: float,
                    started: float) -> None:
    """Waits on a processing-time query and stops it once idle or out of time. Idle, it stops
    between micro-batches. Out of time, it stops at once even in a batch (under a backlog the
    batches follow each other without a gap, so waiting for one would not bound the run), but
    not before the run's first batch is done: a run stopped then would only have spent its
    start-up. A batch cut short is not committed, and is read again from the checkpoint next
    time (its rows are upserts with the same write timestamps)."""
    last_active, batches_seen = time.time(), report.batches
    while not query.awaitTermination(1):  # raises the query's error, if it failed
        now = time.time()
        if report.batches != batches_seen:
            batches_seen, last_active = report.batches, now
        reason = should_stop(now, last_active, started, idle_s, max_run_s)
        active = query.status["isTriggerActive"]
        out_of_time = bool(max_run_s) and now - started >= max_run_s and report.batches > 0
        if reason and (out_of_time or not active):
            log.warning("stopping the query: %s (%d batches, %d messages)", reason,
                        report.batches, report.messages)
            query.stop()
            break
    query.awaitTermination()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = parse_args(argv)
    report = run(args)
    summary = asdict(report)
    summary.pop("first_batch_started")
    for key in ("startup_seconds", "processing_seconds", "total_seconds"):
        summary[key] = round(summary[key], 2)
    text = json.dumps(summary, sort_keys=True)
    log.warning("stream_users done: %s", text)
    if args.report:
        path = Path(args.report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


if __name__ == "__main__":
    main()
