"""What the running local stack exposes to the rest of the host: no socket beyond loopback, a
state folder and secret files no other user can read, and no secret on a command line."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from local_stack import processes
from local_stack.settings import read_env_file
from local_stack.topology import active_services


def _stack_pids(settings) -> dict[int, str]:
    table = processes.live_processes()
    pids: dict[int, str] = {}
    for service in active_services(settings):
        tracked = processes.running(settings.run_dir, service.name)
        assert tracked is not None, f"{service.name} is not running"
        for pid in processes.service_members(tracked.pid, table):
            pids[pid] = service.name
    return pids


def _secret_values(settings) -> list[str]:
    values = [value for value in read_env_file(settings.secrets_file).values() if len(value) >= 8]
    assert values, f"no secrets in {settings.secrets_file}"
    return values


def test_no_socket_of_the_stack_listens_beyond_loopback(stack):
    pids = _stack_pids(stack.settings)
    sockets = processes.listening_sockets(pids)
    assert {pids[s.pid] for s in sockets} >= {"postgres", "kafka", "cassandra", "registry",
                                              "airflow-api-server"}
    exposed = [f"{pids[s.pid]} (pid {s.pid}) on {s.address}:{s.port}"
               for s in sockets if not s.on_loopback]
    assert not exposed, exposed


def test_the_state_folder_and_its_secrets_are_the_owners_alone(stack):
    state = stack.settings.state_dir
    mode = stat.S_IMODE(state.stat().st_mode)
    if os.geteuid() == 0:  # PostgreSQL runs as its own user and passes through it
        assert mode == 0o710, oct(mode)
        assert state.stat().st_gid == Path(stack.settings.state_dir / "postgres").stat().st_gid
    else:
        assert mode == 0o700, oct(mode)
    secret_files = [stack.settings.secrets_file, stack.settings.env_file,
                    state / "airflow" / "passwords.json"]
    for path in secret_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    leftovers = [p for p in state.rglob("*.pw")] + [p for p in state.glob(".*.tmp")]
    assert not leftovers, leftovers


def test_no_secret_appears_on_a_command_line_of_the_stack(stack):
    secrets = _secret_values(stack.settings)
    shown = []
    for pid, service in _stack_pids(stack.settings).items():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        shown += [f"{service} (pid {pid})" for secret in secrets if secret in command]
    assert not shown, f"a secret is on the command line of {shown}"
