"""The first command runs the pipeline: `up` on a clean state folder, with no other command,
starts every service, unpauses the DAGs and ends with users in Cassandra. It runs as a second stack
on 127.0.0.2 with its own state folder (the suite's stack and its data are not touched), and is
removed afterwards with `clean`. The installed runtimes (JDK, Spark, jars) are the suite's, as the
cluster topology shares them: a second copy would cost minutes and about 600 MB of disk, and the
suite's own `make up` from a fresh clone is what installs them from nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from include import names
from local_stack.services import cassandra_session
from local_stack.settings import PROJECT_ROOT, Settings

# Every port of a stack is on its own loopback address, so this one shares none with the suite's.
HOST = "127.0.0.2"


def _local_mode(command: str, env: dict[str, str], timeout_s: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "local_stack", command], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout_s)


def test_up_on_a_clean_state_ends_with_users_in_cassandra(settings):
    state = Path(tempfile.mkdtemp(prefix="userstream-first-up-"))
    # Nothing of the suite's stack: its settings and connections are in this process's env.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "USERSTREAM"))}
    env |= {"USERSTREAM_STATE_DIR": str(state), "USERSTREAM_HOST": HOST,
            "USERSTREAM_SOURCE": "local", "USERSTREAM_INSTALL_DIR": str(settings.installs)}
    try:
        up = _local_mode("up", env, timeout_s=1500)
        output = up.stdout + up.stderr
        assert up.returncode == 0, output[-4000:]
        assert f"unpaused {', '.join(names.ALL_DAG_IDS)}" in output
        assert "users have landed in Cassandra" in output, output[-2000:]
        assert f"http://{HOST}:8080/userstream/" in output
        cluster, session = cassandra_session(Settings(state_dir=state, host=HOST), timeout=30)
        try:
            row = session.execute(
                f"SELECT user_id, event_id FROM {names.CASSANDRA_KEYSPACE}.users LIMIT 1").one()
        finally:
            cluster.shutdown()
        assert row is not None and row.event_id >= 1
    finally:
        clean = _local_mode("clean", env, timeout_s=600)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert not state.exists()
