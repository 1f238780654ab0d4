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


def machine_ticks() -> list[int]:
    """The machine's CPU time so far, in ticks, by kind (the `cpu` line of /proc/stat)."""
    return [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def machine_shares(before: list[int], after: list[int]) -> dict[str, float]:
    """Between two `machine_ticks` readings, percent of all CPU time that was busy (user, system,
    irq), idle (with I/O wait), and stolen by the hypervisor: time this virtual machine's runnable
    processes waited while the host ran others. A run with much steal is slow for reasons of the
    host, not of the code: compare runs by it."""
    delta = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(delta[:8]) or 1  # guest time is already counted in user time
    user, nice, system, idle, iowait, irq, softirq, steal = delta[:8]
    return {"busy_percent": round(100 * (user + nice + system + irq + softirq) / total, 1),
            "idle_percent": round(100 * (idle + iowait) / total, 1),
            "steal_percent": round(100 * steal / total, 1)}
