"""`up` is idempotent, `down` stops exactly what `up` started, and a service that cannot start
makes `up` fail with its name and the tail of its log. These stop and restart the whole stack, so
conftest orders them after every other test."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from local_stack import processes
from local_stack.cli import StartupError, wait_healthy
from local_stack.services import Service, Unhealthy
from local_stack.settings import PROJECT_ROOT
from local_stack.topology import active_services

pytestmark = pytest.mark.lifecycle


def _local_mode(command: str, timeout: int = 900) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    # The suite runs with the DAGs paused: `up` must not unpause them in its middle.
    result = subprocess.run([sys.executable, "-m", "local_stack", command],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "USERSTREAM_START_PAUSED": "true"})
    return result, time.monotonic() - started


def _tracked(settings) -> dict[str, processes.Tracked]:
    return {s.name: processes.running(settings.run_dir, s.name) for s in active_services(settings)}


def test_up_twice_is_idempotent(stack):
    before = _tracked(stack.settings)
    assert all(before.values()), before
    result, elapsed = _local_mode("up")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _tracked(stack.settings) == before, "a second `up` restarted a running service"
    assert "started" not in result.stdout
    assert elapsed < 60, f"warm up took {elapsed:.0f}s"


def test_a_service_that_dies_fails_startup_with_its_name_and_log(stack, tmp_path):
    settings = stack.settings
    name = "probe-broken-service"
    log = settings.log_dir / f"{name}.log"
    log.unlink(missing_ok=True)
    processes.start(name, ["sh", "-c", "echo 'port 9092 already in use' >&2; exit 3"],
                    run_dir=settings.run_dir, log_file=log, env={"PATH": "/usr/bin:/bin"})

    def never_healthy(ctx):
        raise Unhealthy("no answer")

    broken = Service(name, lambda s: name, lambda ctx: [], never_healthy)
    time.sleep(0.5)
    try:
        with pytest.raises(StartupError) as failure:
            wait_healthy([broken], stack)
    finally:
        processes.pid_file(settings.run_dir, name).unlink(missing_ok=True)
    message = str(failure.value)
    assert name in message
    assert "port 9092 already in use" in message


def test_down_leaves_no_process_running_then_up_restores(stack):
    before = _tracked(stack.settings)
    family = {name: {(pid, processes.process_start_ticks(pid)) for pid in
                     set(processes.group_members(t.pid)) | set(processes.descendants(t.pid))}
              for name, t in before.items()}
    assert all(family.values())
    result, _ = _local_mode("down")
    assert result.returncode == 0, result.stdout + result.stderr
    for name, tracked in before.items():
        assert not processes.is_running(tracked.pid, tracked.start_ticks), f"{name} still runs"
        assert processes.group_members(tracked.pid) == [], f"{name} left children running"
        survivors = [pid for pid, ticks in family[name] if processes.is_running(pid, ticks)]
        assert survivors == [], f"{name} left processes {survivors} running"
    assert not any(_tracked(stack.settings).values())

    result, elapsed = _local_mode("up")
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(_tracked(stack.settings).values())
    print(f"restart after down: {elapsed:.0f}s")
