"""Pure parts of local mode: settings parsing, CQL splitting, PID tracking of real processes."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys

import pytest

from include.cql import split_statements as cql_statements
from local_stack import processes
from local_stack.settings import (
    Settings,
    ensure_state_dir,
    read_env_file,
    write_env_file,
    write_private_file,
)


def test_settings_defaults_and_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("USERSTREAM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("USERSTREAM_KAFKA_PORT", "19092")
    s = Settings.from_env()
    assert s.kafka_bootstrap == "127.0.0.1:19092"
    assert s.registry_url.endswith("/apis/ccompat/v7")
    assert s.state_dir == tmp_path.resolve()


def test_settings_reject_bad_values(monkeypatch):
    monkeypatch.setenv("USERSTREAM_KAFKA_PORT", "ninety")
    with pytest.raises(ValueError, match="USERSTREAM_KAFKA_PORT"):
        Settings.from_env()
    monkeypatch.delenv("USERSTREAM_KAFKA_PORT")
    monkeypatch.setenv("USERSTREAM_SOURCE", "ftp")
    with pytest.raises(ValueError, match="USERSTREAM_SOURCE"):
        Settings.from_env()


def test_env_file_round_trip_is_private(tmp_path):
    path = tmp_path / "secrets.env"
    write_env_file(path, {"A": "1", "B": '{"x": 2}'}, "header")
    assert read_env_file(path) == {"A": "1", "B": '{"x": 2}'}
    assert path.stat().st_mode & 0o077 == 0


def test_cql_statements_split_and_drop_comments():
    text = "-- a comment\nCREATE KEYSPACE k WITH x = 1;\n\nCREATE TABLE k.t (id int PRIMARY KEY);\n"
    assert cql_statements(text) == ["CREATE KEYSPACE k WITH x = 1",
                                    "CREATE TABLE k.t (id int PRIMARY KEY)"]


def test_stop_ends_the_whole_process_group(tmp_path):
    script = "import subprocess,time; subprocess.Popen(['sleep','300']); time.sleep(300)"
    tracked = processes.start("probe", [sys.executable, "-c", script], run_dir=tmp_path,
                              log_file=tmp_path / "probe.log", env={"PATH": "/usr/bin:/bin"})
    deadline = 50
    while len(processes.group_members(tracked.pid)) < 2 and deadline:
        subprocess.run(["sleep", "0.1"])
        deadline -= 1
    assert processes.running(tmp_path, "probe") == tracked
    assert processes.stop(tmp_path, "probe", timeout_s=5) == "stopped"
    assert processes.group_members(tracked.pid) == []
    assert processes.running(tmp_path, "probe") is None


def test_a_recycled_pid_is_not_ours(tmp_path):
    (tmp_path / "ghost.pid").write_text("1 123456789\n")
    assert processes.running(tmp_path, "ghost") is None


def test_a_secret_file_is_created_new_and_never_written_through_a_planted_link(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    planted = tmp_path / "readable-by-others"
    planted.write_text("")
    for name in ("secrets.tmp", ".secrets.env.tmp"):  # where a writer might stage the file
        (state / name).symlink_to(planted)
    write_env_file(state / "secrets.env", {"POSTGRES_PASSWORD": "s3cret-value"}, "secrets")
    assert planted.read_text() == ""
    assert read_env_file(state / "secrets.env") == {"POSTGRES_PASSWORD": "s3cret-value"}
    assert stat.S_IMODE((state / "secrets.env").stat().st_mode) == 0o600


def test_a_secret_file_is_0600_whatever_the_umask(tmp_path):
    previous = os.umask(0)
    try:
        write_private_file(tmp_path / "new" / "passwords.json", "{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new" / "passwords.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["passwords.json"]


def test_the_state_folder_is_closed_to_other_users(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    ensure_state_dir(state)
    mode = stat.S_IMODE(state.stat().st_mode)
    if os.geteuid() == 0:  # PostgreSQL, run as its own user, passes through to its folder
        assert mode == 0o710
        assert state.stat().st_gid == pwd.getpwnam("postgres").pw_gid
    else:
        assert mode == 0o700
