"""After the suite's DAG runs (this file runs after every other test but the data check): no
generated secret is in any task log or service log of the stack."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from local_stack.settings import read_env_file

pytestmark = pytest.mark.after_suite

CHUNK = 16 * 1024 * 1024


def files_containing(secrets: list[str], roots: Iterable[Path]) -> dict[Path, int]:
    """Each log file under the roots that holds one of the secrets, with how many of them."""
    needles = [secret.encode() for secret in secrets]
    overlap = max(len(needle) for needle in needles)
    found: dict[Path, int] = {}
    for root in roots:
        for path in root.rglob("*.log*"):
            seen: set[bytes] = set()
            tail = b""
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    window = tail + chunk
                    seen |= {needle for needle in needles if needle in window}
                    tail = window[-overlap:]
            if seen:
                found[path] = len(seen)
    return found


def test_no_secret_is_in_a_task_log_or_a_service_log(stack, tmp_path):
    secrets = [value for value in read_env_file(stack.settings.secrets_file).values()
               if len(value) >= 8]
    assert secrets
    planted = tmp_path / "dag_id=x" / "attempt=1.log"
    planted.parent.mkdir()
    planted.write_text(f"connecting with {secrets[0]} ...\n")
    assert files_containing(secrets, [tmp_path]) == {planted: 1}  # the scan can find one

    task_logs = stack.settings.state_dir / "airflow" / "logs"
    assert any(task_logs.rglob("*.log")), f"no task log under {task_logs}"
    leaks = files_containing(secrets, [task_logs, stack.settings.log_dir])
    assert not leaks, f"secrets in {sorted(map(str, leaks))[:10]}"
