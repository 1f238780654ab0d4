"""`python -m local_stack {up,down,status,clean,env}`: the local stack's lifecycle.

`make up` / `make down` / `make status` / `make clean` call these (see the README).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from include import names
from include.provisioning import ALERTS_WEBHOOK_SETTING
from include.stream.job import CHECKPOINT_NAME
from include.stream.query import STOPPED, query_dir, query_health, read_heartbeat, request_stop
from local_stack import bootstrap, first_run, installer, processes, services
from local_stack.airflow_api import AirflowApi
from local_stack.environment import AIRFLOW_ADMIN_USER, service_environment, write_client_env
from local_stack.services import (
    OFFLINE_SOURCE_ONLY,
    Context,
    Service,
    Unhealthy,
    log_file,
    prepare_airflow,
)
from local_stack.settings import (
    TOPOLOGIES,
    Settings,
    default_state_dir,
    ensure_secrets,
    ensure_state_dir,
    write_env_file,
)
from local_stack.topology import active_services, all_services
from ops import pipeline_page, pipeline_status


class StartupError(RuntimeError):
    pass


# A first start needs about 1.5 GB (the runtimes, and pyspark's build in the temp folder), and the
# data grows from there. A full disk fails far from its cause (PostgreSQL "could not write init
# file", a broker that exits), so `up` refuses to start below this and says which folder is short.
GIB = 1024**3
MIN_FREE_DISK_BYTES = 1 * GIB


def disk_shortage(free_by_folder: dict[str, int],
                  minimum: int = MIN_FREE_DISK_BYTES) -> str | None:
    """What is short, given the free bytes on each folder's disk; None when every one has
    `minimum`."""
    short = {folder: free for folder, free in free_by_folder.items() if free < minimum}
    if not short:
        return None
    return (f"not enough disk to start the stack: {describe_free_disk(short)}; it needs at least "
            f"{minimum / GIB:.0f} GB (free some space, or set USERSTREAM_STATE_DIR and TMPDIR "
            f"to a larger disk)")


def describe_free_disk(free_by_folder: dict[str, int]) -> str:
    return ", ".join(f"{free / GIB:.1f} GB free for {folder}"
                     for folder, free in free_by_folder.items())


def free_disk(settings: Settings) -> dict[str, int]:
    """Free bytes on the disk of the state folder (data, logs, runtimes) and of the temp folder."""
    folders = {str(settings.state_dir): settings.state_dir,
               "temporary files": tempfile.gettempdir()}
    return {name: shutil.disk_usage(path).free for name, path in folders.items()}


def _say(message: str) -> None:
    print(message, flush=True)


def make_context(settings: Settings) -> tuple[Context, bool]:
    secret, created = ensure_secrets(settings)
    env = {**os.environ, **service_environment(settings, secret)}
    return Context(settings, secret, env), created


def check_health(service: Service, ctx: Context) -> tuple[bool, str]:
    try:
        return True, service.health(ctx)
    except Unhealthy as exc:
        return False, str(exc)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"


def start_service(service: Service, ctx: Context) -> bool:
    """Starts the service unless it already runs; True when it was started now."""
    settings = ctx.settings
    if processes.running(settings.run_dir, service.name):
        return False
    orphan = service.adopt(settings)
    if orphan is not None:
        processes.adopt(settings.run_dir, service.name, orphan)
        _say(f"  adopted running {service.name} (pid {orphan})")
        return False
    host = service.address(settings)
    busy = [p for p in service.ports(settings) if processes.port_in_use(host, p)]
    if busy:
        raise StartupError(
            f"{service.name} cannot start: port(s) {busy} on {host} are already in use "
            f"by a process local mode did not start. Stop it, or choose other ports with the "
            f"USERSTREAM_*_PORT settings (see .env.example).")
    service.prepare(ctx)
    processes.start(service.name, service.command(ctx), run_dir=settings.run_dir,
                    log_file=log_file(settings, service.name),
                    env={**ctx.env, **service.extra_env(ctx)}, cwd=settings.state_dir)
    return True


def wait_healthy(services: list[Service], ctx: Context) -> None:
    settings = ctx.settings
    pending = {service.name: service for service in services}
    deadline = time.monotonic() + settings.startup_timeout_s
    last: dict[str, str] = {}
    while pending:
        for name, service in list(pending.items()):
            if not processes.running(settings.run_dir, name):
                raise StartupError(
                    f"{name} exited during start-up. Last lines of "
                    f"{log_file(settings, name)}:\n{processes.tail(log_file(settings, name))}")
            ok, detail = check_health(service, ctx)
            last[name] = detail
            if ok:
                _say(f"  {name:<22} healthy   {detail}")
                del pending[name]
        if not pending:
            return
        if time.monotonic() > deadline:
            name = next(iter(pending))
            raise StartupError(
                f"{name} not healthy after {settings.startup_timeout_s}s ({last.get(name)}). "
                f"Last lines of {log_file(settings, name)}:\n"
                f"{processes.tail(log_file(settings, name))}")
        time.sleep(1)


def up(settings: Settings) -> int:
    started_at = time.monotonic()
    ensure_state_dir(settings.state_dir)
    if shortage := disk_shortage(free_disk(settings)):
        raise StartupError(shortage)
    ctx, new_secrets = make_context(settings)
    installer.ensure_all(settings)
    ctx, _ = make_context(settings)  # the Spark jar list is known only after the install

    services = active_services(settings)
    _apply_source_change(settings)
    by_name = {service.name: service for service in services}
    start_service(by_name["postgres"], ctx)
    wait_healthy([by_name["postgres"]], ctx)
    for change in bootstrap.ensure_databases(ctx):
        _say(f"  postgres: {change}")

    airflow = [s for s in services if s.name.startswith("airflow-")]
    others = [s for s in services if s.name != "postgres" and s not in airflow]
    parallel = [s for s in others if not s.serial]
    for service in parallel:
        if start_service(service, ctx):
            _say(f"  started {service.name}")
    with ThreadPoolExecutor(max_workers=1) as pool:
        airflow_needed = any(not processes.running(settings.run_dir, s.name) for s in airflow)
        migrate = pool.submit(prepare_airflow, ctx) if airflow_needed else None
        for service in others:
            if service.serial:
                if start_service(service, ctx):
                    _say(f"  started {service.name}")
                wait_healthy([service], ctx)
        wait_healthy(parallel, ctx)
        if migrate is not None:
            migrate.result()
    for service in airflow:
        if start_service(service, ctx):
            _say(f"  started {service.name}")
    wait_healthy(airflow, ctx)

    for change in bootstrap.ensure_cassandra_roles(ctx):
        _say(f"  cassandra: {change}")
    bootstrap.ensure_kafka_principals(ctx)
    _say(f"  provisioned: {bootstrap.provision(ctx).describe()}")
    write_client_env(settings, ctx.secret)
    _source_marker(settings).write_text(settings.source)
    _summary(ctx, new_secrets, time.monotonic() - started_at)
    landed = first_run.run_pipeline(ctx, _say)
    _say(f"\n  Watch it: {settings.airflow_url}{pipeline_page.URL_PREFIX}/  (the pipeline page: "
         f"per-hop counts, lag, latest messages, dead letters, alerts), or `make status`")
    return 0 if landed else 1


def _source_marker(settings: Settings):
    return settings.run_dir / "source"


def _apply_source_change(settings: Settings) -> None:
    """Airflow reads the `randomuser_api` connection from its environment at start, so switching
    the source restarts Airflow; the local API runs only for the local source."""
    marker = _source_marker(settings)
    previous = marker.read_text().strip() if marker.exists() else None
    if previous is None or previous == settings.source:
        return
    _say(f"  source changed from {previous} to {settings.source}: restarting Airflow")
    for service in reversed(all_services(settings)):
        if service.name.startswith("airflow-") or (
                service.name in OFFLINE_SOURCE_ONLY and settings.source != "local"):
            processes.stop(settings.run_dir, service.name, graceful_signal=service.stop_signal,
                           timeout_s=service.stop_timeout_s)


def _summary(ctx: Context, new_secrets: bool, elapsed: float) -> None:
    s = ctx.settings
    _say(f"\nuserstream local stack is up ({elapsed:.0f}s). Source: {s.source}, "
         f"topology: {s.topology}")
    for service in active_services(s):
        _say(f"  {service.name:<22} {service.describe(s)}")
    _say(f"\n  Airflow UI: {s.airflow_url}  user: {AIRFLOW_ADMIN_USER}")
    if new_secrets:
        _say(f"  password (shown once): {ctx.secret['AIRFLOW_ADMIN_PASSWORD']}")
    _say(f"  credentials: {s.secrets_file}")
    if webhook := ctx.env.get(ALERTS_WEBHOOK_SETTING):
        _say(f"  alerts: {json.loads(webhook).get('host')}")
    else:
        _say(f"  alerts go nowhere: {ALERTS_WEBHOOK_SETTING} is not set (see .env.example)")
    _say(f"  client environment: set -a; . {s.env_file}; set +a")


def stop_query(folder: Path, timeout_s: float = 90.0) -> str:
    """Asks the long-lived stream query to stop between two micro-batches and waits until its
    heartbeat says it stopped; says what happened."""
    healthy, detail = query_health(read_heartbeat(folder))
    if not healthy:
        return f"no stream query to stop ({detail})"
    request_stop(folder)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        heartbeat = read_heartbeat(folder) or {}
        if heartbeat.get("state") == STOPPED:
            return (f"stopped the stream query after {heartbeat['batches']} micro-batch(es), "
                    f"{heartbeat['messages']:,} message(s)")
        time.sleep(1)
    return f"the stream query did not stop within {timeout_s:.0f}s (its driver is stopped next)"


def stream_query_dir(settings: Settings) -> Path:
    return query_dir(settings.checkpoint_dir / CHECKPOINT_NAME)


def stop_stream(settings: Settings) -> int:
    """`make stop-stream`: pauses the stream DAG, whose next run would start the query again,
    then stops the query."""
    ctx, _ = make_context(settings)
    AirflowApi(ctx).set_paused(names.STREAM_DAG_ID, True)
    _say(f"paused {names.STREAM_DAG_ID}; unpause it to start the stream query again")
    _say(stop_query(stream_query_dir(settings)))
    return 0


def down(settings: Settings) -> int:
    """Stops the stream query between two micro-batches, then every service, the last started
    first. A cluster's nodes stop together: a Kafka broker stopped after the other two has no
    controller quorum left to hand its partitions to, and its controlled shutdown would wait for
    one until killed."""
    _say(f"  {'stream query':<22} {stop_query(stream_query_dir(settings))}")

    def stop(service: Service) -> str:
        return processes.stop(settings.run_dir, service.name, graceful_signal=service.stop_signal,
                              timeout_s=service.stop_timeout_s)

    groups: list[list[Service]] = []
    for service in reversed(all_services(settings)):
        if groups and service.cluster and groups[-1][0].cluster == service.cluster:
            groups[-1].append(service)
        else:
            groups.append([service])
    with ThreadPoolExecutor(max_workers=4) as pool:
        for group in groups:
            for service, result in zip(group, pool.map(stop, group), strict=True):
                _say(f"  {service.name:<22} {result}")
    return 0


def down_every_topology() -> int:
    """`make down` without TOPOLOGY: stops whichever topology runs from its default folder."""
    for topology in TOPOLOGIES:
        if (default_state_dir(topology) / "run").exists():
            _say(f"{topology}:")
            down(replace(Settings.from_env(), topology=topology,
                         state_dir=default_state_dir(topology)))
    return 0


def status(settings: Settings) -> int:
    ctx, _ = make_context(settings)
    all_ok = True
    for service in active_services(settings):
        tracked = processes.running(settings.run_dir, service.name)
        if tracked is None:
            all_ok = False
            _say(f"{service.name:<22} DOWN")
            continue
        ok, detail = check_health(service, ctx)
        all_ok &= ok
        _say(f"{service.name:<22} {'UP' if ok else 'UNHEALTHY':<9} pid {tracked.pid:<7} {detail}")
    _say("\n" + pipeline_status.render(_pipeline_status(ctx)))
    _say(f"stream query: {query_health(read_heartbeat(stream_query_dir(settings)))[1]}")
    _say(f"disk: {describe_free_disk(free_disk(settings))}")
    return 0 if all_ok else 1


def _pipeline_status(ctx: Context) -> pipeline_status.PipelineStatus:
    import requests

    settings = ctx.settings

    def last_runs() -> dict[str, dict]:
        headers = services.airflow_auth_header(ctx, timeout=5)
        runs = {}
        for dag_id in names.PIPELINE_DAG_IDS:
            response = requests.get(f"{settings.airflow_url}/api/v2/dags/{dag_id}/dagRuns",
                                    params={"order_by": "-run_after", "limit": 1},
                                    headers=headers, timeout=5)
            response.raise_for_status()
            found = response.json()["dag_runs"]
            runs[dag_id] = found[0] if found else None
        return runs

    return pipeline_status.gather(
        pg_connect=lambda: services.pg_connect(ctx, names.USERSTREAM_DATABASE,
                                               role=names.POSTGRES_STATUS_ROLE),
        cassandra_session=lambda: services.cassandra_session(
            settings, timeout=3, role=names.CASSANDRA_READER_ROLE),
        kafka_config=services.kafka_client(settings, names.KAFKA_STATUS_PRINCIPAL),
        checkpoint=settings.checkpoint_dir / CHECKPOINT_NAME,
        last_runs=last_runs)


def clean(settings: Settings) -> int:
    down(settings)
    if settings.state_dir.exists():
        shutil.rmtree(settings.state_dir)
        _say(f"removed {settings.state_dir}")
    return 0


def compose_env(settings: Settings) -> int:
    """The secrets of a docker compose deployment, generated like local mode's (the same file, so
    one set of credentials), into `<state>/compose.env` for `docker compose --env-file`."""
    ensure_state_dir(settings.state_dir)
    secret, _ = ensure_secrets(settings)
    target = settings.state_dir / "compose.env"
    write_env_file(target, secret, "Generated by `make compose-env`: docker compose's secrets.")
    _say(f"compose secrets: {target} (Airflow UI user {AIRFLOW_ADMIN_USER}, password "
         f"AIRFLOW_ADMIN_PASSWORD in that file)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack")
    parser.add_argument("command", choices=["up", "down", "stop-stream", "status", "clean",
                                            "compose-env"])
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        commands = {"up": up, "down": down, "stop-stream": stop_stream, "status": status,
                    "clean": clean, "compose-env": compose_env}
        if args.command == "down" and not os.environ.get("USERSTREAM_TOPOLOGY") \
                and not os.environ.get("USERSTREAM_STATE_DIR"):
            return down_every_topology()
        return commands[args.command](settings)
    except (StartupError, installer.InstallError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr, flush=True)
        return 1
