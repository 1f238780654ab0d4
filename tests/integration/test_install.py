"""What `make up` installed is ready for the short-lived Python processes the stack starts: every
Airflow task and DAG parse, and every Spark driver, imports Airflow, the providers, `include` and
its DAG file anew. Without current bytecode each of them compiles those from source first (where
PYTHONDONTWRITEBYTECODE is set, every time): most of a small task's CPU."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import pytest

from local_stack.settings import PROJECT_ROOT

AIRFLOW_SIDE_MODULES = ["airflow.sdk.execution_time.task_runner",
                        "airflow.providers.apache.spark.operators.spark_submit",
                        "psycopg", "confluent_kafka", "fastavro",
                        "airflow.providers.apache.cassandra.hooks.cassandra"]
PROJECT_FILES = ["airflow_home/dags/ingest_users.py", "airflow_home/dags/relay_user_events.py",
                 "airflow_home/dags/stream_users_to_cassandra.py", "include/relay/outbox.py",
                 "include/ingest/task.py", "include/stream/operator.py", "spark/stream_users.py"]


def _bytecode_is_current(source: Path) -> bool:
    """True when Python would load `source` from its cached bytecode instead of compiling it:
    same interpreter magic, and the source time and size recorded in the header match."""
    cached = Path(importlib.util.cache_from_source(str(source)))
    if not cached.is_file():
        return False
    header = cached.read_bytes()[:16]
    magic, flags, mtime, size = header[:4], *struct.unpack("<3I", header[4:16])
    stat = source.stat()
    return (magic == importlib.util.MAGIC_NUMBER and flags == 0
            and mtime == int(stat.st_mtime) & 0xFFFFFFFF and size == stat.st_size & 0xFFFFFFFF)


@pytest.mark.parametrize("module", AIRFLOW_SIDE_MODULES)
def test_airflow_environment_has_bytecode(stack, module):
    source = Path(importlib.util.find_spec(module).origin)
    assert _bytecode_is_current(source), f"{source} has no current bytecode"


@pytest.mark.parametrize("relative", PROJECT_FILES)
def test_project_code_has_bytecode(stack, relative):
    assert _bytecode_is_current(PROJECT_ROOT / relative), f"{relative} has no current bytecode"


def test_spark_runtime_has_bytecode(stack):
    packages = sorted(stack.settings.spark_venv.glob("lib/python3*/site-packages"))
    assert packages, f"no site-packages under {stack.settings.spark_venv}"
    for relative in ("pyspark/sql/dataframe.py", "pyspark/sql/functions.py",
                     "py4j/java_gateway.py"):
        source = packages[-1] / relative
        assert source.is_file(), source
        assert _bytecode_is_current(source), f"{source} has no current bytecode"
