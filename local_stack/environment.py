"""The environment every local-mode process and client shares: Airflow settings and connections.

Connections are `AIRFLOW_CONN_*` variables in Airflow's JSON form, so nothing is stored in the
metadata DB and nothing secret is committed. The result is also written to `<state>/userstream.env`
so a shell can `set -a; . .local/userstream.env` and use the stack directly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import quote

from include import names, provisioning
from local_stack.settings import (
    CASSANDRA_PASSWORD_NAMES,
    KAFKA_PASSWORD_NAMES,
    POSTGRES_PASSWORD_NAMES,
    PROJECT_ROOT,
    Settings,
    write_env_file,
)

# PostgreSQL's superuser: only `up` (roles, databases) and the tests use it.
POSTGRES_USER = "userstream"
AIRFLOW_ADMIN_USER = "admin"


def _conn(conn_type: str, **fields: object) -> str:
    return json.dumps({"conn_type": conn_type, **fields}, separators=(",", ":"))


def connections(settings: Settings, secret: dict[str, str]) -> dict[str, str]:
    randomuser = (
        _conn("http", host=settings.host, port=settings.randomuser_port, schema="http")
        if settings.source == "local"
        else _conn("http", host="randomuser.me", schema="https")
    )
    spark_submit = str(settings.spark_submit)
    return {
        **{"AIRFLOW_CONN_" + conn_id.upper(): _conn(
            "postgres", host=settings.host, port=settings.postgres_port, login=role,
            password=secret.get(POSTGRES_PASSWORD_NAMES[role], ""),
            schema=names.USERSTREAM_DATABASE,
        ) for conn_id, role in names.POSTGRES_CONN_ROLES.items()},
        **{"AIRFLOW_CONN_" + conn_id.upper(): _conn("kafka", extra={
            "bootstrap.servers": settings.kafka_bootstrap,
            **provisioning.kafka_login(principal,
                                       secret.get(KAFKA_PASSWORD_NAMES[principal], ""))})
           for conn_id, principal in names.KAFKA_CONN_PRINCIPALS.items()},
        "AIRFLOW_CONN_" + names.SCHEMA_REGISTRY_CONN_ID.upper(): _conn(
            "http", host=settings.host, port=settings.registry_port, schema="http",
            extra={"path": "/apis/ccompat/v7"},
        ),
        # Never let the Spark hook fall back to its silent `yarn` default: the master is explicit.
        "AIRFLOW_CONN_" + names.SPARK_CONN_ID.upper(): _conn(
            "spark", host=settings.spark_master, extra={"deploy-mode": "client"},
        ),
        **cassandra_connections(settings, secret),
        "AIRFLOW_CONN_" + names.RANDOMUSER_CONN_ID.upper(): randomuser,
        # The local alert inbox; point this at a real webhook (chat, pager) in production.
        # The whole URL sits in `host` so a webhook path needs no extra setting.
        "AIRFLOW_CONN_" + names.ALERTS_WEBHOOK_CONN_ID.upper(): _conn(
            "http", host=f"{settings.alerts_url}/alerts",
        ),
        "USERSTREAM_SPARK_SUBMIT": spark_submit,
        "USERSTREAM_SPARK_DRIVER_HOST": settings.host,
        "USERSTREAM_SPARK_PYTHON": str(settings.spark_python),
        "USERSTREAM_SPARK_JARS": ",".join(str(p) for p in settings.spark_jars),
        "USERSTREAM_REGISTRY_URL": settings.registry_url,
        "USERSTREAM_CHECKPOINT_DIR": str(settings.checkpoint_dir),
        # Spark's scratch space (a driver's copies of the jars, shuffle files). A job killed
        # with SIGKILL leaves its folder behind: keep those in the state folder, not /tmp.
        "SPARK_LOCAL_DIRS": str(settings.spark_dir / "local"),
        **replication_settings(settings),
        # Read by local_stack and the tests only; no DAG or include/ module looks at it.
        "USERSTREAM_TOPOLOGY": settings.topology,
    }


def replication_settings(settings: Settings) -> dict[str, str]:
    """How many copies the topic and the keyspace keep: one per node, up to 3, and a write
    acknowledged by a majority of them."""
    copies = min(len(settings.node_hosts), 3)
    return {provisioning.TOPIC_REPLICATION_SETTING: str(copies),
            provisioning.TOPIC_MIN_INSYNC_SETTING: str(copies // 2 + 1),
            provisioning.KEYSPACE_REPLICATION_SETTING: str(copies)}


def cassandra_connections(settings: Settings, secret: dict[str, str]) -> dict[str, str]:
    """One connection per Cassandra role: reading (the provider's default), the stream job's
    writes, provisioning. Cassandra 5 speaks protocol 5; without it in the extra the driver
    offers newer ones first and logs two warnings each time a task connects."""
    return {"AIRFLOW_CONN_" + conn_id.upper(): _conn(
        "cassandra", host=",".join(settings.node_hosts), port=settings.cassandra_port,
        schema=names.CASSANDRA_KEYSPACE, login=role,
        password=secret.get(CASSANDRA_PASSWORD_NAMES[role], ""),
        extra={"protocol_version": provisioning.CASSANDRA_PROTOCOL_VERSION})
        for conn_id, role in names.CASSANDRA_CONN_ROLES.items()}


def airflow_settings(settings: Settings, secret: dict[str, str]) -> dict[str, str]:
    role = names.POSTGRES_AIRFLOW_ROLE
    password = quote(secret.get(POSTGRES_PASSWORD_NAMES[role], ""), safe="")
    airflow_state = settings.state_dir / "airflow"
    db = (f"postgresql+psycopg2://{role}:{password}@{settings.host}:"
          f"{settings.postgres_port}/{names.AIRFLOW_DATABASE}")
    return {
        "AIRFLOW_HOME": str(PROJECT_ROOT / "airflow_home"),
        # The generated airflow.cfg lives in the state folder so airflow_home/ stays clean.
        "AIRFLOW_CONFIG": str(airflow_state / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "airflow_home" / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # 4 for the hops' tasks, and one slot the stream query's supervisor task holds for good.
        "AIRFLOW__CORE__PARALLELISM": "5",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__FERNET_KEY": secret["AIRFLOW_FERNET_KEY"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{AIRFLOW_ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_state / "passwords.json"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{settings.airflow_url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db,
        "AIRFLOW__API__HOST": settings.host,
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": settings.airflow_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secret["AIRFLOW_API_SECRET_KEY"],
        "AIRFLOW__API_AUTH__JWT_SECRET": secret["AIRFLOW_JWT_SECRET"],
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_state / "logs"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # An unchanged DAG file is parsed again every 5 minutes, not every 30 s (the default);
        # an edited one is parsed at the next refresh, as its modification time is newer.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        # Its default host is every address; the api-server reads task logs from the files, so
        # the log servers (which bind every address, whatever the settings) are not started.
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": settings.host,
        "PYTHONPATH": str(PROJECT_ROOT),
        **(celery_settings(settings, secret) if settings.clustered else {}),
    }


def celery_settings(settings: Settings, secret: dict[str, str]) -> dict[str, str]:
    """The cluster's distributed executor: Celery with Redis as its broker. The provider acks a
    task only once it finished (`task_acks_late`, its default), and a task whose worker died
    stops heartbeating: the scheduler fails it after the timeout below and Airflow retries it."""
    role = names.POSTGRES_AIRFLOW_ROLE
    password = quote(secret.get(POSTGRES_PASSWORD_NAMES[role], ""), safe="")
    redis_password = quote(secret.get("REDIS_PASSWORD", ""), safe="")
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL":
            f"redis://:{redis_password}@{settings.host}:{settings.redis_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": (
            f"db+postgresql://{role}:{password}@{settings.host}:{settings.postgres_port}/"
            f"{names.AIRFLOW_DATABASE}"),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
    }


def service_environment(settings: Settings, secret: dict[str, str]) -> dict[str, str]:
    env = {**airflow_settings(settings, secret), **connections(settings, secret)}
    java = shutil.which("java")
    if java:  # .../jvm/java-17/bin/java -> .../jvm/java-17
        env.setdefault("JAVA_HOME", str(Path(java).resolve().parent.parent))
    return env


def write_client_env(settings: Settings, secret: dict[str, str]) -> None:
    write_env_file(settings.env_file, service_environment(settings, secret),
                   "Generated by `make up`: the local stack's Airflow settings and connections.")
