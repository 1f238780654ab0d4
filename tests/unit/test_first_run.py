"""The end of `up` when the real randomuser API cannot be reached: it says so, names the bundled
source's setting, leaves the DAGs paused (no Airflow call is made) and does not fail `up`.
The probe goes to a closed port on this machine: a real refused connection, no mock."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from local_stack.first_run import real_api_problem, run_pipeline
from local_stack.services import Context
from local_stack.settings import Settings

CLOSED = "http://127.0.0.1:9/api/1.4/?results=1"


def test_an_unreachable_api_is_named_with_the_bundled_sources_setting(tmp_path: Path):
    assert "ConnectionError" in real_api_problem(CLOSED, timeout_s=2)
    said: list[str] = []
    ctx = Context(replace(Settings(state_dir=tmp_path), source="api"), {}, {})
    assert run_pipeline(ctx, said.append, api_probe=CLOSED) is True
    text = "\n".join(said)
    assert "cannot be reached from this machine" in text
    assert "make up SOURCE=local" in text and "USERSTREAM_SOURCE=local" in text
    assert "DAGs stay paused" in text


def test_start_paused_leaves_the_dags_alone(tmp_path: Path):
    said: list[str] = []
    ctx = Context(replace(Settings(state_dir=tmp_path), start_paused=True), {}, {})
    assert run_pipeline(ctx, said.append, api_probe=CLOSED) is True
    assert "USERSTREAM_START_PAUSED=true" in said[0]
