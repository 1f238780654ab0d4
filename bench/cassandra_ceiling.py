"""The Cassandra ceiling of the running local stack: how many rows shaped like `userstream.users`
Cassandra alone takes, written by latte (a native load generator, `cargo install latte-cli`)
with `bench/cassandra_ceiling.rn`: prepared single-row inserts, 128 in flight, one thread. The
rows go to a scratch keyspace made from the pipeline's CQL and dropped afterwards.

    .venv/bin/python -m bench.cassandra_ceiling --seconds 30

`bench.pipeline_benchmark` runs it after its bulk phase and prints the pipeline's users/s as a
ratio to it. latte is looked up on PATH, then in ~/.cargo/bin (`USERSTREAM_LATTE` names another).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from include import names
from include.provisioning import apply_cql
from local_stack.services import cassandra_session
from local_stack.settings import CASSANDRA_PASSWORD_NAMES, Settings, read_env_file

WORKLOAD = Path(__file__).with_name("cassandra_ceiling.rn")


@dataclass(frozen=True)
class Ceiling:
    rows_per_s: float
    rows_per_s_std_err: float
    latency_p50_ms: float
    seconds: float
    concurrency: int


class LatteMissing(RuntimeError):
    pass


def latte_binary() -> str:
    candidates = [os.environ.get("USERSTREAM_LATTE"), shutil.which("latte"),
                  str(Path.home() / ".cargo" / "bin" / "latte")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    raise LatteMissing("latte is not installed: `cargo install latte-cli --locked` "
                       "(or set USERSTREAM_LATTE to its path)")


# latte's order of the latency percentiles in its report (src/stats/percentiles.rs).
LATTE_PERCENTILES = (0, 1, 2, 5, 10, 25, 50, 75, 90, 95, 98, 99, 99.9, 99.99, 100)


def _read_report(path: Path) -> tuple[float, float, float]:
    result = json.loads(path.read_text())["result"]
    if result["error_count"]:
        raise RuntimeError(f"latte saw {result['error_count']} errors: {result['errors'][:3]}")
    throughput = result["cycle_throughput"]
    p50_ms = result["cycle_latency"]["percentiles"][LATTE_PERCENTILES.index(50)]["value"]
    return throughput["value"], throughput["std_err"] or 0.0, p50_ms


def measure(settings: Settings, seconds: float = 30, concurrency: int = 128) -> Ceiling:
    """latte's write rate into a scratch keyspace (dropped afterwards), as the generated admin."""
    latte = latte_binary()
    keyspace = f"ceiling_{uuid.uuid4().hex[:8]}"
    password = read_env_file(settings.secrets_file)[
        CASSANDRA_PASSWORD_NAMES[names.CASSANDRA_ADMIN_ROLE]]
    cluster, session = cassandra_session(settings, timeout=30, password=password)
    try:
        apply_cql(session, keyspace)
        with tempfile.TemporaryDirectory() as work:
            report = Path(work) / "report.json"
            # The password reaches latte through its environment, never its command line.
            env = {**os.environ, "CASSANDRA_USER": names.CASSANDRA_ADMIN_ROLE,
                   "CASSANDRA_PASSWORD": password}
            finished = subprocess.run(
                [latte, "run", str(WORKLOAD), "-P", f"keyspace=\"{keyspace}\"", "--warmup", "3s",
                 "--duration", f"{seconds:g}s", "--threads", "1", "--concurrency",
                 str(concurrency), "--consistency", "LOCAL_QUORUM", "--quiet", "--output",
                 str(report), f"{settings.host}:{settings.cassandra_port}"],
                env=env, cwd=work, capture_output=True, text=True, timeout=seconds + 120)
            if finished.returncode != 0:
                raise RuntimeError(f"latte failed ({finished.returncode}): "
                                   f"{(finished.stderr or finished.stdout)[-2000:]}")
            rate, std_err, p50_ms = _read_report(report)
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.shutdown()
    return Ceiling(rows_per_s=round(rate), rows_per_s_std_err=round(std_err),
                   latency_p50_ms=round(p50_ms, 1), seconds=seconds, concurrency=concurrency)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=128)
    args = parser.parse_args()
    print(json.dumps(asdict(measure(Settings.from_env(), args.seconds, args.concurrency)),
                     indent=2))


if __name__ == "__main__":
    main()
