"""`make status` against the running stack: every hop's probe answers, with real numbers."""

from __future__ import annotations

import re
import subprocess
import sys

from local_stack.services import pg_connect
from local_stack.settings import PROJECT_ROOT


def test_status_shows_each_hop_from_the_real_services(stack):
    result = subprocess.run([sys.executable, "-m", "local_stack", "status"],
                            cwd=PROJECT_ROOT, env=stack.env, capture_output=True, text=True,
                            timeout=120)
    screen = result.stdout
    assert result.returncode == 0, screen + result.stderr
    assert "unavailable" not in screen, screen
    staged = int(re.search(r"users staged ([\d,]+)", screen).group(1).replace(",", ""))
    with pg_connect(stack, "userstream") as conn:
        assert staged <= conn.execute("SELECT count(*) FROM staging.users").fetchone()[0]
    assert re.search(r"outbox pending [\d,]+, failed [\d,]+, published [\d,]+", screen)
    assert re.search(r"end offsets p0=[\d,]+", screen)
    assert re.search(r"lag [\d,]+ \(p0=", screen)
    assert re.search(r"cassandra rows (>= )?[\d,]+, dead letters [\d,]+", screen)
    assert screen.count("last run:") == 3
