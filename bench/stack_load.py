"""CPU load of the running local stack, per service, over a period: at rest (DAGs paused), or with
the default schedules running (`--unpause`: the three DAGs are unpaused for the measurement, after
a settling period, and paused again at the end). The stream DAG's Spark runs count on their own
line, apart from the Airflow processes that launch them, and so do Airflow's workers with the
task processes they fork (by process title).

    .venv/bin/python -m bench.stack_load --seconds 240 --unpause

Every process of every service is read twice a second, in one pass over /proc; the CPU a
short-lived process spends after its last reading (at most half a second of it) is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

from include import names
from local_stack import processes
from local_stack.airflow_api import AirflowApi
from local_stack.cli import make_context
from local_stack.settings import Settings
from local_stack.topology import active_services

DAG_IDS = names.PIPELINE_DAG_IDS
SPARK_JOB = "spark job"
_TICKS = os.sysconf("SC_CLK_TCK")


def process_label(pid: int, service: str) -> str:
    """The line a process counts on: the Spark job, Airflow's workers (a task process is forked
    from its worker and keeps its title), or else its service."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return service
    if b"SparkSubmit" in command:
        return SPARK_JOB
    if command.startswith(b"airflow worker"):
        return "airflow workers"
    return service


def _spark_launcher(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"spark-submit" in command or b"spark-class" in command


class LoadSampler:
    """CPU seconds per service between the first reading and the last, by process: a process
    already running at the first reading counts from there, a newer one from its start."""

    def __init__(self, settings: Settings) -> None:
        # Each running service's leader, looked up once: the services are not restarted while
        # the benchmark reads them.
        self.leaders = {service.name: tracked.pid for service in active_services(settings)
                        if (tracked := processes.running(settings.run_dir, service.name))}
        self.first: dict[tuple[int, int], float] = {}
        self.last: dict[tuple[int, int], float] = {}
        self.labels: dict[tuple[int, int], str] = {}
        # spark-submit's shell scripts become the driver JVM by exec, keeping their pid: only
        # those are read again until they show the JVM.
        self.launchers: set[tuple[int, int]] = set()
        self.readings = 0

    def read(self) -> None:
        table = processes.live_processes()
        by_pid = {process.pid: process for process in table}
        for service, leader in self.leaders.items():
            for pid in processes.service_members(leader, table):
                if (process := by_pid.get(pid)) is None:
                    continue
                key, cpu = (pid, process.start_ticks), process.cpu_ticks / _TICKS
                if key not in self.first:
                    self.first[key] = cpu if self.readings == 0 else 0.0
                    self.labels[key] = process_label(pid, service)
                    if self.labels[key] == service and _spark_launcher(pid):
                        self.launchers.add(key)
                elif key in self.launchers:
                    self.labels[key] = process_label(pid, service)
                    if self.labels[key] == SPARK_JOB:
                        self.launchers.discard(key)
                self.last[key] = cpu
        self.readings += 1

    def by_service(self) -> Counter:
        load: Counter = Counter()
        for key, first_cpu in self.first.items():
            load[self.labels[key]] += self.last[key] - first_cpu
        return load


class BackgroundSampler:
    """A LoadSampler that reads twice a second on its own thread between start() and stop();
    stop() returns the CPU seconds per line (service, Spark job, Airflow workers)."""

    def __init__(self, settings: Settings) -> None:
        self.sampler = LoadSampler(settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.sampler.read()

    def start(self) -> BackgroundSampler:
        self.sampler.read()
        self._thread.start()
        return self

    def stop(self) -> Counter:
        self._stop.set()
        self._thread.join()
        self.sampler.read()
        return self.sampler.by_service()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=240)
    parser.add_argument("--unpause", action="store_true",
                        help="run the three DAGs on their default schedules while measuring")
    parser.add_argument("--settle", type=float, default=120,
                        help="with --unpause: seconds between unpausing and measuring")
    args = parser.parse_args()
    ctx, _ = make_context(Settings.from_env())
    api = AirflowApi(ctx) if args.unpause else None
    try:
        if api is not None:
            for dag_id in DAG_IDS:
                api.set_paused(dag_id, False)
            time.sleep(args.settle)
        sampler = LoadSampler(ctx.settings)
        started, own_cpu = time.monotonic(), time.process_time()
        while time.monotonic() - started < args.seconds:
            sampler.read()
            time.sleep(0.5)
        sampler.read()
        elapsed = time.monotonic() - started
        own_cpu = time.process_time() - own_cpu
    finally:
        if api is not None:
            for dag_id in DAG_IDS:
                api.set_paused(dag_id, True)
    load = sampler.by_service()
    percent = {label: round(seconds / elapsed * 100, 1) for label, seconds in load.most_common()}
    for label, share in percent.items():
        print(f"{label:<22} {share:6.1f}% of a core")
    print(json.dumps({
        "mode": "default schedules" if args.unpause else "at rest",
        "seconds": round(elapsed),
        "percent_of_a_core": percent,
        "total_percent_of_a_core": round(sum(load.values()) / elapsed * 100, 1),
        "cores": os.cpu_count(),
        # Not in the total: this benchmark's own reading of /proc.
        "sampler_percent_of_a_core": round(own_cpu / elapsed * 100, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
