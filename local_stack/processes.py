"""Starting and stopping local-mode services as plain processes, tracked by PID files.

A PID file holds the PID and the process start time (from /proc), so a recycled PID is never
mistaken for our service. Each service runs in its own session: stopping signals the whole
process group, gracefully first, then forcefully.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Tracked:
    name: str
    pid: int
    start_ticks: int


def process_start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name (field 2) may contain spaces, so split after ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def is_running(pid: int, start_ticks: int | None = None) -> bool:
    ticks = process_start_ticks(pid)
    if ticks is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state == "Z":
        return False
    return start_ticks is None or ticks == start_ticks


def pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def read_tracked(run_dir: Path, name: str) -> Tracked | None:
    path = pid_file(run_dir, name)
    try:
        pid_text, ticks_text = path.read_text().split()
        return Tracked(name, int(pid_text), int(ticks_text))
    except (OSError, ValueError):
        return None


def running(run_dir: Path, name: str) -> Tracked | None:
    tracked = read_tracked(run_dir, name)
    if tracked and is_running(tracked.pid, tracked.start_ticks):
        return tracked
    return None


def all_tracked(run_dir: Path) -> list[Tracked]:
    found = []
    for path in sorted(run_dir.glob("*.pid")):
        tracked = read_tracked(run_dir, path.stem)
        if tracked:
            found.append(tracked)
    return found


def start(
    name: str,
    argv: Sequence[str],
    *,
    run_dir: Path,
    log_file: Path,
    env: dict[str, str],
    cwd: Path | None = None,
) -> Tracked:
    run_dir.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=True, close_fds=True,
        )
    ticks = process_start_ticks(proc.pid) or 0
    pid_file(run_dir, name).write_text(f"{proc.pid} {ticks}\n")
    return Tracked(name, proc.pid, ticks)


def adopt(run_dir: Path, name: str, pid: int) -> Tracked:
    """Records an already running process as the service's (its PID file was lost)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    ticks = process_start_ticks(pid) or 0
    pid_file(run_dir, name).write_text(f"{pid} {ticks}\n")
    return Tracked(name, pid, ticks)


def port_in_use(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


@dataclass(frozen=True)
class LiveProcess:
    pid: int
    parent: int
    group: int
    start_ticks: int  # tells a process from a later one that reuses its pid
    cpu_ticks: int  # user + system


def live_processes() -> list[LiveProcess]:
    """Every process that is not a zombie, from one pass over /proc."""
    table = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            table.append(LiveProcess(int(entry.name), int(fields[1]), int(fields[2]),
                                     int(fields[19]), int(fields[11]) + int(fields[12])))
    return table


def group_members(pgid: int, table: Sequence[LiveProcess] | None = None) -> list[int]:
    table = live_processes() if table is None else table
    return [p.pid for p in table if p.group == pgid]


def descendants(pid: int, table: Sequence[LiveProcess] | None = None) -> list[int]:
    """The process and everything it started, including children that left its process group
    (PostgreSQL's backends call setsid)."""
    children: dict[int, list[int]] = {}
    for process in live_processes() if table is None else table:
        children.setdefault(process.parent, []).append(process.pid)
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        if Path(f"/proc/{current}").exists():
            found.append(current)
        stack.extend(children.get(current, []))
    return found


def service_members(leader: int, table: Sequence[LiveProcess] | None = None) -> list[int]:
    """A service's processes: its process group, and everything its leader started."""
    table = live_processes() if table is None else table
    return sorted(set(group_members(leader, table)) | set(descendants(leader, table)))


def stop(run_dir: Path, name: str, *, graceful_signal: int = signal.SIGTERM,
         timeout_s: float = 30.0) -> str:
    """Stops a tracked service and everything in its process group. Returns what happened."""
    tracked = read_tracked(run_dir, name)
    if tracked is None:
        return "not started"
    if not is_running(tracked.pid, tracked.start_ticks):
        pid_file(run_dir, name).unlink(missing_ok=True)
        return "was not running"
    pgid = tracked.pid  # start_new_session makes the service its group's leader
    _signal_group(pgid, graceful_signal)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not group_members(pgid) and not is_running(tracked.pid, tracked.start_ticks):
            pid_file(run_dir, name).unlink(missing_ok=True)
            return "stopped"
        time.sleep(0.2)
    _signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and group_members(pgid):
        time.sleep(0.2)
    pid_file(run_dir, name).unlink(missing_ok=True)
    return "killed after timeout"


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def tail(path: Path, lines: int = 30) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(content[-lines:])


@dataclass(frozen=True)
class ListeningSocket:
    pid: int
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int

    @property
    def on_loopback(self) -> bool:
        mapped = getattr(self.address, "ipv4_mapped", None)
        return (mapped or self.address).is_loopback


def _proc_net_address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = bytes.fromhex(hex_address)
    # The kernel prints each 32-bit word of the address in host (little-endian) order.
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words)


def listening_sockets(pids: Iterable[int]) -> list[ListeningSocket]:
    """The TCP sockets in LISTEN state that these processes hold, from /proc/net/tcp and tcp6."""
    owner_of_inode: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owner_of_inode[target[8:-1]] = pid
        except OSError:
            continue
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in owner_of_inode:
                address, port = local.split(":")
                found.append(ListeningSocket(owner_of_inode[inode], _proc_net_address(address),
                                             int(port, 16)))
    return found
