"""Losing a node of the cluster topology and bringing it back: `kill -9` of the node's whole
process group (the node and what it started: a Spark worker's executor, a Celery worker's task
processes), then the launcher's own start and health check."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from local_stack import processes
from local_stack.cli import check_health, start_service, wait_healthy
from local_stack.services import Context
from local_stack.topology import active_services, by_name


def kill_node(stack: Context, name: str) -> int:
    """SIGKILL to the node's process group; returns the pid it had."""
    tracked = processes.running(stack.settings.run_dir, name)
    assert tracked, f"{name} is not running"
    os.killpg(tracked.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while processes.running(stack.settings.run_dir, name):
        assert time.monotonic() < deadline, f"{name} survived SIGKILL"
        time.sleep(0.2)
    return tracked.pid


def restart_node(stack: Context, name: str) -> None:
    service = by_name(name, stack.settings)
    start_service(service, stack)
    wait_healthy([service], stack)


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = 300,
               poll_s: float = 1) -> object:
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        assert time.monotonic() < deadline, f"not within {timeout_s}s: {what}"
        time.sleep(poll_s)
    return found


def cluster_health(stack: Context) -> dict[str, tuple[bool, str]]:
    return {service.name: check_health(service, stack)
            for service in active_services(stack.settings)}


def wait_cluster_healthy(stack: Context, timeout_s: float = 300) -> dict[str, str]:
    """Every node healthy, and Kafka with no partition short of its in-sync replicas."""
    def healthy() -> dict[str, str] | None:
        health = cluster_health(stack)
        if all(ok for ok, _ in health.values()) and all(
                "0 under-replicated" in detail for name, (_, detail) in health.items()
                if name.startswith("kafka-")):
            return {name: detail for name, (_, detail) in health.items()}
        return None

    return wait_until(healthy, "the cluster healthy again", timeout_s, poll_s=3)


def pending_hints(stack: Context) -> int:
    """Bytes of hints the Cassandra nodes still hold for a node that was down."""
    return sum(path.stat().st_size for path in Path(stack.settings.state_dir).glob(
        "cassandra-*/data/hints/*.hints"))


def supervisor_group(task_instance_id: str) -> int | None:
    """The process group of the Airflow supervisor process that runs this task instance: a
    Celery worker's pool process, which names itself `airflow supervisor: <task instance id>`."""
    title = f"airflow supervisor: {task_instance_id}".encode()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().rstrip(b"\0") == title:
                return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
        except OSError:
            continue
    return None


def batch_in_flight(stack: Context) -> bool:
    """True while the stream query runs a micro-batch: Spark wrote the batch's planned offsets
    (`offsets/N`) and has not committed it yet (`commits/N`)."""
    from include.stream.job import CHECKPOINT_NAME

    checkpoint = stack.settings.checkpoint_dir / CHECKPOINT_NAME

    def last(folder: str) -> int:
        path = checkpoint / folder
        return max((int(p.name) for p in path.iterdir() if p.name.isdigit()), default=-1) \
            if path.is_dir() else -1

    return last("offsets") > last("commits")
