"""CPU seconds of the processes a benchmark run spans: the split that shows where its time goes."""

from __future__ import annotations

import resource
from pathlib import Path

import psutil

from include.local_mode import processes


def cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def children_cpu_s() -> float:
    """This process's finished children (e.g. a spark-submit run it waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def service_process(run_dir: Path, name: str, start_hint: str) -> psutil.Process:
    """A running local-mode service, or exit saying how to start it."""
    tracked = processes.running(run_dir, name)
    if tracked is None:
        raise SystemExit(f"{name} is not running: start it with `{start_hint}`")
    return psutil.Process(tracked.pid)
