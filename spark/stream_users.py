"""Hop 3: Kafka `users_created` (Confluent-framed Avro) -> Cassandra `userstream.users`.

A Spark Structured Streaming job run by spark-submit with the project's jar set
(spark-sql-kafka, spark-avro, spark-cassandra-connector). Each micro-batch:

1. splits the Confluent framing: magic byte 0, 4-byte schema id, Avro body;
2. decodes each body with its *writer* schema, fetched from the registry by id (cached), resolved
   to the reader schema `include/schemas/user_created.avsc`, so evolved schemas keep working;
3. validates (a decodable body with a UUID `user_id`) and keeps the newest event per user;
4. upserts `users` through the connector (primary key `user_id`: a replay rewrites, never adds);
5. writes what it could not decode or validate to `users_dead_letter` with the reason.

The table's columns are the .avsc's fields plus where each row came from; `table_columns` derives
them, and a unit test holds the CQL to it. Progress is checkpointed; by default the job drains
what is in the topic and exits (`--trigger available-now`); `--trigger processing-time` runs a
long-lived query, which `--stop-when-idle-s` ends once no message came for that long (and
`--max-run-s` ends in any case), between two micro-batches. That keeps one Spark start-up for as
long as data keeps coming. A JSON report (rows, dead letters, offsets, timings) goes to `--report`.

This file runs inside the Spark runtime's Python, not Airflow's: it imports nothing of `include`.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("userstream.stream_users")

READER_SCHEMA = Path(__file__).resolve().parents[1] / "include" / "schemas" / "user_created.avsc"

AVRO_TO_CQL = {"string": "text", "int": "int", "long": "bigint", "double": "double",
               "float": "float", "boolean": "boolean", "bytes": "blob"}
LOGICAL_TO_CQL = {"uuid": "uuid", "timestamp-millis": "timestamp",
                  "timestamp-micros": "timestamp", "date": "date"}
# Where each row came from and when it landed; not part of the event.
PROVENANCE_COLUMNS = [("kafka_partition", "int"), ("kafka_offset", "bigint"),
                      ("ingestion_time", "timestamp")]
# user_id too: Cassandra reads a UUID in either case, so counting and ranking must not tell
# "ABC..." from "abc..." apart.
LOWER_CASED = {"email", "user_id"}
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _cql_type(avro_type: Any) -> str:
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        if len(branches) != 1:
            raise ValueError(f"only [null, T] unions map to a column, got {avro_type}")
        return _cql_type(branches[0])
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        if logical in LOGICAL_TO_CQL:
            return LOGICAL_TO_CQL[logical]
        return _cql_type(avro_type["type"])
    if avro_type not in AVRO_TO_CQL:
        raise ValueError(f"Avro type {avro_type!r} has no column mapping")
    return AVRO_TO_CQL[avro_type]


def table_columns(avro_schema: dict[str, Any]) -> list[tuple[str, str]]:
    """The `users` table's columns (name, CQL type): every .avsc field, then provenance."""
    return [(f["name"], _cql_type(f["type"])) for f in avro_schema["fields"]] + PROVENANCE_COLUMNS


@dataclass
class StreamReport:
    """What one run of the job did; written as JSON for the Airflow task and the benchmark."""

    rows_written: int = 0
    dead_letters: int = 0
    batches: int = 0
    messages: int = 0
    end_offsets: dict[str, int] = field(default_factory=dict)
    sample_user_ids: list[str] = field(default_factory=list)
    schema_ids: list[int] = field(default_factory=list)
    startup_seconds: float = 0.0
    processing_seconds: float = 0.0
    total_seconds: float = 0.0
    first_batch_started: float | None = None


class SchemaRegistry:
    """Writer schemas by id from a Confluent-compatible registry, cached for the job's life."""

    def __init__(self, url: str, attempts: int = 5):
        self.url = url.rstrip("/")
        self.attempts = attempts
        self._cache: dict[int, str | None] = {}

    def schema(self, schema_id: int) -> str | None:
        """The schema text, or None when the registry has no such id (a poison message). Any
        other failure raises: a registry outage must fail the batch, not dead-letter good data."""
        if schema_id not in self._cache:
            self._cache[schema_id] = self._fetch(schema_id)
        return self._cache[schema_id]

    def _fetch(self, schema_id: int) -> str | None:
        url = f"{self.url}/schemas/ids/{schema_id}"
        for attempt in range(1, self.attempts + 1):
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    return json.loads(response.read())["schema"]
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
    return parser.parse_args(argv)


class UsersBatchWriter:
    """The foreachBatch body: decode, validate, upsert, dead-letter, count."""

    def __init__(self, args: argparse.Namespace, reader_schema: str, report: StreamReport):
        self.args = args
        self.reader_schema = reader_schema
        parsed = json.loads(reader_schema)
        self.columns = [name for name, _ in table_columns(parsed)]
        self.required_fields = [f["name"] for f in parsed["fields"]
                                if not isinstance(f["type"], list)]
        self.registry = SchemaRegistry(args.registry_url)
        self.report = report

    def __call__(self, batch, batch_id: int) -> None:
        from pyspark.sql import functions as F
        from pyspark.sql.avro.functions import from_avro

        started = time.time()
        if self.report.first_batch_started is None:
            self.report.first_batch_started = started
        framed = batch.select(
            "topic", "partition", "offset", "timestamp", "key", "value",
            F.coalesce(F.length("value") >= 5, F.lit(False)).alias("long_enough"),
            F.hex(F.substring("value", 1, 1)).alias("magic"),
            F.conv(F.hex(F.substring("value", 2, 4)), 16, 10).cast("int").alias("schema_id"),
        ).persist()
        cached = [framed]
        try:
            self._write(framed, batch_id, cached, F, from_avro)
        finally:
            for frame in cached:
                frame.unpersist()
        self.report.processing_seconds += time.time() - started

    def _write(self, framed, batch_id: int, cached: list, F, from_avro) -> None:
        schema_ids, undecodable, decoded_parts = self._split_by_schema(framed, F, from_avro)
        dead = [undecodable.select(*self._dead_letter_columns(F))]
        users_written = invalid_count = 0
        if decoded_parts:
            users_written, invalid_count, invalid = self._write_users(
                _union(decoded_parts), cached, F)
            dead.append(invalid.select(*self._dead_letter_columns(F)))
        # Dead letters are rare: counted from the caches, read again only when there are some.
        dead_count = undecodable.count() + invalid_count
        if dead_count:
            self._write_dead_letters(_union(dead))
        self._count(framed, batch_id, F, users_written, dead_count, schema_ids)

    def _split_by_schema(self, framed, F, from_avro) -> tuple[list[int], Any, list]:
        """The schema ids of the batch, the messages that cannot be decoded (with `error`), and
        one frame per known writer schema with its decoded `record`."""
        well_framed = F.col("long_enough") & (F.col("magic") == "00")
        schema_ids = sorted(r.schema_id for r in
                            framed.where(well_framed).select("schema_id").distinct().collect())
        # Unknown ids (None) are dead-lettered below.
        writer_schemas = {i: text for i in schema_ids
                          if (text := self.registry.schema(i)) is not None}
        # The body is cut from the cached value where it is decoded, not cached a second time.
        body = F.expr("substring(value, 6, length(value) - 5)")
        decoded_parts = [
            framed.where(well_framed & (F.col("schema_id") == schema_id)).withColumn(
                "record", from_avro(body, writer_schema,
                                    {"mode": "PERMISSIVE", "avroSchema": self.reader_schema}))
            for schema_id, writer_schema in writer_schemas.items()]
        known = list(writer_schemas)
        error = (
            F.when(~F.col("long_enough"), F.lit("message shorter than the 5-byte Confluent header"))
            .when(F.col("magic") != "00",
                  F.concat(F.lit("magic byte is 0x"), F.col("magic"), F.lit(", expected 0x00")))
            .when(~F.col("schema_id").isin(known) if known else F.lit(True),
                  F.concat(F.lit("schema id "), F.col("schema_id").cast("string"),
                           F.lit(" is not in the schema registry")))
        )
        undecodable = framed.where(error.isNotNull()).withColumn("error", error)
        return schema_ids, undecodable, decoded_parts

    def _write_users(self, decoded, cached: list, F) -> tuple[int, int, Any]:
        """Upserts the valid users; returns the users written, the invalid count and the
        invalid messages (with `error`)."""
        # PERMISSIVE from_avro yields a struct of nulls for a body it cannot decode, and a
        # required (non-union) field is never null after a successful decode.
        undecoded = F.col("record").isNull()
        for name in self.required_fields:
            undecoded = undecoded | F.col(f"record.{name}").isNull()
        invalid_reason = (
            F.when(undecoded,
                   F.concat(F.lit("Avro body does not decode with writer schema "),
                            F.col("schema_id").cast("string")))
            .when(~F.coalesce(F.col("record.user_id").rlike(UUID_PATTERN), F.lit(False)),
                  F.lit("user_id is missing or not a UUID")))
        # Decoded once: the counts, the users and the dead letters are read from this cache.
        checked = decoded.withColumn("error", invalid_reason).persist()
        cached.append(checked)
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
        if users_written:
            self._save(self._shape(valid, F, newest_only=repeats > 0), "users")
            if len(self.report.sample_user_ids) < 20:
                self.report.sample_user_ids += [
                    r.user_id for r in valid.select("record.user_id")
                    .limit(20 - len(self.report.sample_user_ids)).collect()]
        return users_written, invalid_count, checked.where(F.col("error").isNotNull())

    def _write_dead_letters(self, dead_letters) -> None:
        self._save(dead_letters, "users_dead_letter")
        for row in dead_letters.select("kafka_partition", "kafka_offset", "error") \
                .limit(5).collect():
            log.warning("dead letter p%s@%s: %s", row.kafka_partition, row.kafka_offset,
                        row.error)

    def _count(self, framed, batch_id: int, F, users_written: int, dead_count: int,
               schema_ids: list[int]) -> None:
        offsets = framed.groupBy("partition").agg(F.max("offset").alias("last"),
                                                  F.count("*").alias("n")).collect()
        messages = sum(r.n for r in offsets)
        for r in offsets:
            key = f"{self.args.topic}:{r.partition}"
            self.report.end_offsets[key] = max(r.last, self.report.end_offsets.get(key, -1))
        self.report.batches += 1
        self.report.messages += messages
        self.report.rows_written += users_written
        self.report.dead_letters += dead_count
        self.report.schema_ids = sorted(set(self.report.schema_ids) | set(schema_ids))
        log.warning("batch %d: %d messages -> %d users upserted, %d dead letters (totals: %d, %d)",
                    batch_id, messages, users_written, dead_count, self.report.rows_written,
                    self.report.dead_letters)

    def _save(self, frame, table: str) -> None:
        """Appends through the connector: an upsert by the table's primary key."""
        (frame.write.format("org.apache.spark.sql.cassandra")
         .options(keyspace=self.args.keyspace, table=table).mode("append").save())

    def _shape(self, checked, F, newest_only: bool):
        """Typed columns in the table's order. With `newest_only` (a user has several events in
        the batch) only the newest event per user is kept: the ranking shuffles and sorts the
        whole batch, so a batch of distinct users skips it."""
        from pyspark.sql import Window

        columns = []
        for name in self.columns:
            if name == "kafka_partition":
                columns.append(F.col("partition").alias(name))
            elif name == "kafka_offset":
                columns.append(F.col("offset").alias(name))
            elif name == "ingestion_time":
                columns.append(F.current_timestamp().alias(name))
            elif name in LOWER_CASED:
                columns.append(F.lower(F.col(f"record.{name}")).alias(name))
            else:
                columns.append(F.col(f"record.{name}").alias(name))
        shaped = checked.select(*columns)
        if not newest_only:
            return shaped
        newest_first = Window.partitionBy("user_id").orderBy(F.col("event_id").desc())
        return (shaped
                .withColumn("_rank", F.row_number().over(newest_first))
                .where(F.col("_rank") == 1).drop("_rank"))

    @staticmethod
    def _dead_letter_columns(F) -> list:
        return [F.col("topic"), F.col("partition").alias("kafka_partition"),
                F.col("offset").alias("kafka_offset"), F.col("error"),
                F.col("schema_id"), F.col("key").alias("raw_key"),
                F.col("value").alias("raw_value"), F.col("timestamp").alias("kafka_timestamp"),
                F.current_timestamp().alias("dead_lettered_at")]


def run(args: argparse.Namespace) -> StreamReport:
    from pyspark.sql import SparkSession

    started = time.time()
    report = StreamReport()
    reader_schema = Path(args.reader_schema).read_text()
    spark = (SparkSession.builder.appName("userstream-stream-users")
             .config("spark.cassandra.connection.host", args.cassandra_host)
             .config("spark.cassandra.connection.port", str(args.cassandra_port))
             .config("spark.sql.shuffle.partitions", "4")
             .getOrCreate())
    spark.sparkContext.setLogLevel("WARN")
    messages = (spark.readStream.format("kafka")
                .option("kafka.bootstrap.servers", args.bootstrap_servers)
                .option("subscribe", args.topic)
                .option("startingOffsets", args.starting_offsets)
                .option("maxOffsetsPerTrigger", str(args.max_offsets_per_trigger))
                .load())
    writer = (messages.writeStream.queryName("stream_users")
              .foreachBatch(UsersBatchWriter(args, reader_schema, report))
              .option("checkpointLocation", args.checkpoint))
    if args.trigger == "available-now":
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=args.interval)
    query = writer.start()
    if args.trigger == "processing-time" and (args.stop_when_idle_s or args.max_run_s):
        _run_until_idle(query, report, args.stop_when_idle_s, args.max_run_s, started)
    else:
        query.awaitTermination()
    report.total_seconds = time.time() - started
    report.startup_seconds = ((report.first_batch_started or time.time()) - started)
    spark.stop()
    return report


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
    """Waits on a processing-time query and stops it between micro-batches once idle or out of
    time. A batch cut short by the stop is replayed from the checkpoint next time (upserts)."""
    last_active, batches_seen = time.time(), report.batches
    while not query.awaitTermination(1):  # raises the query's error, if it failed
        now = time.time()
        if report.batches != batches_seen:
            batches_seen, last_active = report.batches, now
        if query.status["isTriggerActive"]:  # looking for data or writing a batch
            continue
        if reason := should_stop(now, last_active, started, idle_s, max_run_s):
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
