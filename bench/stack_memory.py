"""Resident memory of the running local stack, per service: RSS (which counts shared pages once
per process) and PSS (shared pages split between their users; sums to the real total).

    .venv/bin/python -m bench.stack_memory
"""

from __future__ import annotations

from pathlib import Path

from local_stack import processes
from local_stack.settings import Settings
from local_stack.topology import active_services


def _kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    settings = Settings.from_env()
    total_rss = total_pss = 0
    for service in active_services(settings):
        tracked = processes.running(settings.run_dir, service.name)
        if tracked is None:
            print(f"{service.name:<22} down")
            continue
        members = processes.service_members(tracked.pid)
        rss = sum(_kib(pid, "Rss") for pid in members)
        pss = sum(_kib(pid, "Pss") for pid in members)
        total_rss += rss
        total_pss += pss
        print(f"{service.name:<22} {len(members):>2} proc  RSS {rss / 1024:7.0f} MiB  "
              f"PSS {pss / 1024:7.0f} MiB")
    print(f"{'total':<31} RSS {total_rss / 1024:7.0f} MiB  PSS {total_pss / 1024:7.0f} MiB")


if __name__ == "__main__":
    main()
