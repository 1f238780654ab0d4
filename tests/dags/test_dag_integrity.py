"""Every DAG file imports cleanly."""

from __future__ import annotations

from pathlib import Path

from airflow.dag_processing.dagbag import DagBag

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "airflow_home" / "dags"


def test_dag_folder_has_no_import_errors():
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
