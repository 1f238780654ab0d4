"""Parsing a DAG file loads no database or broker driver: the dag-processor parses every file
again and again, and psycopg, confluent_kafka and the Cassandra driver belong to the tasks that use
them. Each file is imported in a fresh interpreter, after the Task SDK that every DAG file needs,
and the modules its import adds are measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "airflow_home" / "dags").glob("*.py"))
DRIVERS = {"psycopg", "psycopg_binary", "psycopg_pool", "confluent_kafka", "cassandra"}

MEASURE = """
import importlib.util, json, sys
import airflow.sdk
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def modules_added_by(dag_file: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    result = subprocess.run([sys.executable, "-c", MEASURE, str(dag_file)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda path: path.stem)
def test_parsing_a_dag_file_loads_no_driver(dag_file: Path):
    added = modules_added_by(dag_file)
    drivers = sorted(m for m in added if m.split(".")[0] in DRIVERS)
    print(f"{dag_file.name}: {len(added)} modules added by its import")
    assert not drivers, f"parsing {dag_file.name} imports {drivers[:10]}"
    assert "include" in added, "the measurement did not import the project's code"
