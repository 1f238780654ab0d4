"""CPU seconds of the processes a benchmark run spans: the split that shows where its time goes."""

from __future__ import annotations

from pathlib import Path

import psutil

from local_stack import processes


def cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def tree_cpu_s(process: psutil.Process) -> dict[int, float]:
    """CPU seconds of a process and each of its descendants (e.g. PostgreSQL's backends), by pid:
    subtract two readings with `cpu_delta_s`."""
    readings = {}
    for member in [process, *process.children(recursive=True)]:
        try:
            readings[member.pid] = cpu_s(member)
        except psutil.NoSuchProcess:
            continue
    return readings


def cpu_delta_s(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two `tree_cpu_s` readings by the processes in the second one."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def service_process(run_dir: Path, name: str, start_hint: str) -> psutil.Process:
    """A running local-mode service, or exit saying how to start it."""
    tracked = processes.running(run_dir, name)
    if tracked is None:
        raise SystemExit(f"{name} is not running: start it with `{start_hint}`")
    return psutil.Process(tracked.pid)
