"""How the stream job (`spark/stream_users.py`) is launched: its arguments, Spark settings and the
environment of the Spark runtime. Shared by the Airflow operator, the tests and the benchmark."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include import names
from include.dag_defaults import (
    STREAM_MAX_OFFSETS_PER_TRIGGER,
    STREAM_QUERY_STALL_S,
    STREAM_TRIGGER_INTERVAL,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STREAM_JOB = PROJECT_ROOT / "spark" / "stream_users.py"
CHECKPOINT_NAME = "stream_users"

# Avro's own limits on what a body may declare: a string, bytes or collection longer than a Kafka
# message can hold is a decode failure (a dead letter), not an allocation of gigabytes.
AVRO_LIMITS = " ".join(f"-Dorg.apache.avro.limits.{kind}.maxLength=1048576"
                       for kind in ("string", "bytes", "collectionItems"))

# Sized for the 2-core local stack; a cluster overrides them through the operator's `conf`.
SPARK_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.driver.memory": "1g",
    "spark.sql.shuffle.partitions": "4",
    "spark.cassandra.output.concurrent.writes": "16",
    "spark.cassandra.output.consistency.level": "LOCAL_QUORUM",
    "spark.cassandra.connection.keepAliveMS": "60000",
    # Every row is its own partition, so the default grouping by partition key sends one
    # request per row; unlogged batches of about 30 rows halved Cassandra's CPU per row
    # (bench/stream_benchmark). Upserts by primary key: a batch that is replayed rewrites.
    "spark.cassandra.output.batch.grouping.key": "none",
    "spark.cassandra.output.batch.size.bytes": "16384",
    # A per-run job lives minutes and lands a few hundred thousand rows: C2's compilations cost
    # it more CPU (about 10 s more in the first micro-batch on 2 cores) than they give back
    # within about 400,000 rows. The long-lived query keeps C2 (`LONG_LIVED_DRIVER_OPTIONS`). In
    # local mode the driver runs the tasks; on a cluster it does not, and executors keep the
    # defaults.
    "spark.driver.extraJavaOptions": f"-XX:TieredStopAtLevel=1 -XX:+UseParallelGC {AVRO_LIMITS}",
    "spark.executor.extraJavaOptions": AVRO_LIMITS,
}
# C2 in steady state: 78-82 us of Spark CPU per row against C1's 100-106 (0.76), 12,700-13,200
# rows/s against 10,000-10,700 (bench/RESULTS.md, 2026-12-01 morning;
# `python -m bench.stream_benchmark --records 400000 --batch-size 50000`). The parallel collector
# over G1 with C2, the same runs interleaved: 84-94 s of Spark CPU for 400,000 rows against G1's
# 108, though G1 paused less (1.6-1.8 s against 2.8); a heap fixed at 1 GiB from the start
# (`-Xms1g`) cut the full collections from 8 to 5 and bought no CPU (90-95 s). The live heap
# after 200,000 users is 135-158 MB (bench/RESULTS.md, 2026-12-01 evening).
LONG_LIVED_DRIVER_OPTIONS = f"-XX:+UseParallelGC {AVRO_LIMITS}"
# The connector closes its Cassandra session once unused for `keepAliveMS` (60 s above). At the
# default cadence a micro-batch comes every minute, so the long-lived query opened a new session,
# logged in and read the schema again for nearly every batch. Ten minutes keeps one session
# across the cadence's batches.
LONG_LIVED_KEEP_ALIVE_MS = "600000"


def spark_conf(environ: Mapping[str, str] = os.environ, long_lived: bool = False) -> dict[str, str]:
    """SPARK_CONF, plus where the driver listens. `USERSTREAM_SPARK_DRIVER_HOST` is the address
    executors reach it at: compose's scheduler service name (container ids do not resolve), or
    local mode's loopback address, so that no driver port listens beyond it (Spark's default is
    the host's own address). The driver binds there too unless `USERSTREAM_SPARK_BIND_ADDRESS`
    says otherwise (compose: every address inside its container). `long_lived`: the settings of
    the supervised query, which runs for days."""
    conf = dict(SPARK_CONF)
    if long_lived:
        conf["spark.driver.extraJavaOptions"] = LONG_LIVED_DRIVER_OPTIONS
        conf["spark.cassandra.connection.keepAliveMS"] = LONG_LIVED_KEEP_ALIVE_MS
    if driver_host := environ.get("USERSTREAM_SPARK_DRIVER_HOST"):
        conf |= {"spark.driver.host": driver_host,
                 "spark.driver.bindAddress": environ.get("USERSTREAM_SPARK_BIND_ADDRESS",
                                                         driver_host)}
    return conf


@dataclass(frozen=True)
class StreamJobConfig:
    bootstrap_servers: str
    registry_url: str
    cassandra_host: str
    cassandra_port: int
    checkpoint: Path
    topic: str = names.USERS_TOPIC
    keyspace: str = names.CASSANDRA_KEYSPACE
    trigger: str = "available-now"
    max_offsets_per_trigger: int = STREAM_MAX_OFFSETS_PER_TRIGGER
    interval: str = STREAM_TRIGGER_INTERVAL
    stop_when_idle_s: float = 0.0
    max_run_s: float = 0.0
    stall_after_s: float = STREAM_QUERY_STALL_S
    report: Path | None = None
    reader_schema: Path | None = None  # the pipeline's .avsc unless a test gives another
    query_dir: Path | None = None  # the long-lived query's records (include/stream/query.py)

    def arguments(self) -> list[str]:
        """Every flag of `spark/stream_users.py`, which has no defaults of its own for them."""
        args = ["--bootstrap-servers", self.bootstrap_servers, "--topic", self.topic,
                "--registry-url", self.registry_url, "--cassandra-host", self.cassandra_host,
                "--cassandra-port", str(self.cassandra_port), "--keyspace", self.keyspace,
                "--checkpoint", str(self.checkpoint), "--trigger", self.trigger,
                "--max-offsets-per-trigger", str(self.max_offsets_per_trigger),
                "--interval", self.interval, "--stop-when-idle-s", str(self.stop_when_idle_s),
                "--max-run-s", str(self.max_run_s), "--stall-after-s", str(self.stall_after_s)]
        if self.report is not None:
            args += ["--report", str(self.report)]
        if self.reader_schema is not None:
            args += ["--reader-schema", str(self.reader_schema)]
        if self.query_dir is not None:
            args += ["--query-dir", str(self.query_dir)]
        return args


@dataclass(frozen=True)
class SparkRuntime:
    """The Spark runtime kept apart from Airflow's environment (see README: two Pythons)."""

    spark_submit: str
    jars: str
    python: str

    @classmethod
    def from_env(cls) -> SparkRuntime:
        return cls(spark_submit=os.environ.get("USERSTREAM_SPARK_SUBMIT", "spark-submit"),
                   jars=os.environ.get("USERSTREAM_SPARK_JARS", ""),
                   python=os.environ.get("USERSTREAM_SPARK_PYTHON", "python3"))

    def env(self) -> dict[str, str]:
        # The driver and workers must not pick up Airflow's Python (it has pyspark-client 4).
        return {"PYSPARK_PYTHON": self.python, "PYSPARK_DRIVER_PYTHON": self.python}

    def command(self, master: str, config: StreamJobConfig,
                extra_conf: dict[str, str] | None = None) -> list[str]:
        command = [self.spark_submit, "--master", master, "--name", "userstream-stream-users"]
        if self.jars:
            command += ["--jars", self.jars]
        conf = {**spark_conf(), **(extra_conf or {})}
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        return [*command, str(STREAM_JOB), *config.arguments()]


def login_environment(cassandra_role: str, cassandra_password: str,
                      kafka_security: Mapping[str, str]) -> dict[str, str]:
    """The stream job's logins as the environment variables it reads: its Cassandra role, and
    its Kafka principal's security settings (librdkafka's names: `security.protocol`,
    `sasl.*`, `ssl.*`)."""
    security = {key: value for key, value in kafka_security.items()
                if key.startswith(("security.", "sasl.", "ssl."))}
    return {names.STREAM_CASSANDRA_USERNAME_ENV: cassandra_role,
            names.STREAM_CASSANDRA_PASSWORD_ENV: cassandra_password,
            names.STREAM_KAFKA_SECURITY_ENV: json.dumps(security)}


def checkpoint_root() -> Path:
    default = PROJECT_ROOT / ".local" / "checkpoints"
    return Path(os.environ.get("USERSTREAM_CHECKPOINT_DIR", default))


def report_path(run_id: str, try_number: int, root: Path | None = None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    return (root or checkpoint_root()) / "reports" / f"{safe}.try{try_number}.json"


def read_report(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(
            f"the stream job exited 0 but wrote no report at {path}; check the spark-submit log")
    return json.loads(path.read_text())
