"""The services only the `cluster` topology runs: a Spark standalone master with two workers,
Redis as the Celery broker, and two Airflow Celery workers. Kafka's and Cassandra's nodes are the
same services as in `single`, once per loopback address (local_stack/services.py)."""

from __future__ import annotations

import socket
import urllib.error
from functools import partial

from local_stack.services import (
    Context,
    Service,
    Unhealthy,
    airflow_command,
    http_get_json,
    render_conf,
)
from local_stack.settings import Settings

SPARK_WORKERS = 2
AIRFLOW_WORKERS = 2
# Each Spark worker offers one core and 1 GiB to executors: one executor per worker, whose
# default memory is 1 GiB. The daemons themselves need little heap.
SPARK_WORKER_CORES = 1
SPARK_WORKER_MEMORY = "1g"
SPARK_DAEMON_MEMORY = "256m"


# --- Spark standalone -------------------------------------------------------------------------

def _spark_class(s: Settings) -> str:
    # The pyspark wheel has `spark-class` but not sbin's start scripts.
    return str(s.spark_venv / "bin" / "spark-class")


def _spark_ui_url(s: Settings) -> str:
    return f"http://{s.host}:{s.spark_ui_port}/json/"


def _spark_master_command(ctx: Context) -> list[str]:
    s = ctx.settings
    return [_spark_class(s), "org.apache.spark.deploy.master.Master", "--host", s.host,
            "--port", str(s.spark_master_port), "--webui-port", str(s.spark_ui_port)]


def _spark_env(ctx: Context, host: str) -> dict[str, str]:
    # SPARK_LOCAL_IP is where the daemon's web UI binds (otherwise every address). SPARK_HOME:
    # spark-class would look for pyspark with whichever Python comes first on the PATH.
    home = next((ctx.settings.spark_venv / "lib").glob("python*/site-packages/pyspark"))
    return {"SPARK_HOME": str(home), "SPARK_LOCAL_IP": host,
            "SPARK_DAEMON_MEMORY": SPARK_DAEMON_MEMORY, "SPARK_NO_DAEMONIZE": "1"}


def spark_master_state(ctx: Context) -> dict:
    try:
        return http_get_json(_spark_ui_url(ctx.settings))
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise Unhealthy(str(exc)) from exc


def _spark_master_health(ctx: Context) -> str:
    state = spark_master_state(ctx)
    if state.get("status") != "ALIVE":
        raise Unhealthy(f"master status {state.get('status')}")
    alive = [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]
    return f"{len(alive)} worker(s) alive, {len(state.get('activeapps', []))} application(s)"


def spark_worker_host(s: Settings, index: int) -> str:
    return s.node_host(index + 1)  # the master is on the first address, workers after it


def _spark_worker_command(ctx: Context, index: int) -> list[str]:
    s = ctx.settings
    work = s.state_dir / f"spark-worker-{index}"
    work.mkdir(parents=True, exist_ok=True)
    return [_spark_class(s), "org.apache.spark.deploy.worker.Worker",
            f"spark://{s.host}:{s.spark_master_port}", "--host", spark_worker_host(s, index),
            "--cores", str(SPARK_WORKER_CORES), "--memory", SPARK_WORKER_MEMORY,
            "--work-dir", str(work), "--webui-port", str(s.spark_ui_port + index)]


def _spark_worker_health(ctx: Context, index: int) -> str:
    host = spark_worker_host(ctx.settings, index)
    workers = [w for w in spark_master_state(ctx).get("workers", [])
               if w.get("host") == host and w.get("state") == "ALIVE"]
    if not workers:
        raise Unhealthy(f"no live worker on {host} registered with the master")
    worker = workers[0]
    return (f"registered, {worker.get('coresused', 0)}/{worker.get('cores')} core(s) in use")


def spark_services(settings: Settings) -> list[Service]:
    master = Service("spark-master",
                     lambda s: f"Spark master on spark://{s.host}:{s.spark_master_port}",
                     _spark_master_command, _spark_master_health,
                     extra_env=lambda ctx: _spark_env(ctx, ctx.settings.host),
                     ports=lambda s: (s.spark_master_port, s.spark_ui_port))
    workers = [Service(f"spark-worker-{i}",
                       lambda s, i=i: f"Spark worker on {spark_worker_host(s, i)}",
                       partial(_spark_worker_command, index=i),
                       partial(_spark_worker_health, index=i), host=spark_worker_host(settings, i),
                       cluster="spark-worker",
                       extra_env=lambda ctx, i=i: _spark_env(
                           ctx, spark_worker_host(ctx.settings, i)),
                       ports=lambda s, i=i: (s.spark_ui_port + i,))
               for i in range(1, SPARK_WORKERS + 1)]
    return [master, *workers]


# --- Redis (the Celery broker) ------------------------------------------------------------------

def _redis_command(ctx: Context) -> list[str]:
    s = ctx.settings
    data = s.state_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    # The password is in the 0600 file, never on the command line.
    config = render_conf("redis.conf", data / "redis.conf", host=s.host, port=s.redis_port,
                         data_dir=data, password=ctx.secret["REDIS_PASSWORD"])
    return ["redis-server", str(config)]


def _redis_health(ctx: Context) -> str:
    import redis

    client = redis.Redis(host=ctx.settings.host, port=ctx.settings.redis_port,
                         password=ctx.secret["REDIS_PASSWORD"], socket_timeout=2)
    try:
        info = client.info("server")
    except redis.RedisError as exc:
        raise Unhealthy(str(exc)) from exc
    finally:
        client.close()
    return f"Redis {info['redis_version']}"


# --- Airflow Celery workers ---------------------------------------------------------------------

def airflow_worker_name(index: int) -> str:
    return f"airflow-worker-{index}@{socket.gethostname()}"


def _airflow_worker_health(ctx: Context, index: int) -> str:
    from celery import Celery

    app = Celery(broker=ctx.env["AIRFLOW__CELERY__BROKER_URL"])
    name = airflow_worker_name(index)
    try:
        replies = app.control.ping(destination=[name], timeout=2)
    except Exception as exc:
        raise Unhealthy(f"{type(exc).__name__}: {exc}") from exc
    finally:
        app.close()
    if not replies:
        raise Unhealthy(f"{name} did not answer a ping")
    return f"{name} answers"


def airflow_worker_services(settings: Settings) -> list[Service]:
    return [Service(f"airflow-worker-{i}", lambda s, i=i: f"Airflow Celery worker {i}",
                    lambda ctx, i=i: airflow_command(
                        "celery", "worker", "--celery-hostname", airflow_worker_name(i),
                        "--skip-serve-logs"),
                    partial(_airflow_worker_health, index=i),
                    # A Celery worker's warm shutdown waits for its running tasks.
                    stop_timeout_s=60, cluster="airflow-worker")
            for i in range(1, AIRFLOW_WORKERS + 1)]


def cluster_services(settings: Settings) -> list[Service]:
    redis = Service("redis", lambda s: f"Redis (Celery broker) on {s.host}:{s.redis_port}",
                    _redis_command, _redis_health, ports=lambda s: (s.redis_port,))
    return [*spark_services(settings), redis]
