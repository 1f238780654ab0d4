"""The local-mode services: how each is prepared, started and checked for health."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from string import Template

from include import names, provisioning
from local_stack import installer
from local_stack.environment import (
    AIRFLOW_ADMIN_USER,
    POSTGRES_USER,
)
from local_stack.settings import (
    CASSANDRA_PASSWORD_NAMES,
    KAFKA_PASSWORD_NAMES,
    POSTGRES_PASSWORD_NAMES,
    PROJECT_ROOT,
    Settings,
    read_env_file,
    write_private_file,
)

CONF_DIR = Path(__file__).parent / "conf"


@dataclass
class Context:
    settings: Settings
    secret: dict[str, str]
    env: dict[str, str]  # os.environ plus the shared service environment


@dataclass(frozen=True)
class Service:
    name: str
    describe: Callable[[Settings], str]
    command: Callable[[Context], list[str]]
    health: Callable[[Context], str]  # returns a detail string; raises when unhealthy
    prepare: Callable[[Context], None] = lambda ctx: None
    extra_env: Callable[[Context], dict[str, str]] = lambda ctx: {}
    ports: Callable[[Settings], tuple[int, ...]] = lambda s: ()
    adopt: Callable[[Settings], int | None] = lambda s: None
    stop_signal: int = signal.SIGTERM
    stop_timeout_s: float = 30.0
    host: str | None = None  # the address it listens on, when not the stack's `host`
    serial: bool = False  # started only once the services before it are healthy
    cluster: str = ""  # the nodes of one cluster share it (`kafka`, `cassandra`, ...)

    def address(self, settings: Settings) -> str:
        return self.host or settings.host


class Unhealthy(RuntimeError):
    pass


def log_file(settings: Settings, name: str) -> Path:
    return settings.log_dir / f"{name}.log"


def render_conf(template: str, target: Path, **values: object) -> Path:
    text = Template((CONF_DIR / template).read_text()).substitute(
        {k: str(v) for k, v in values.items()})
    write_private_file(target, text)  # Kafka's holds its admin's credential
    return target


# --- PostgreSQL -----------------------------------------------------------------------------

def _pg_dir(s: Settings) -> Path:
    return s.state_dir / "postgres"


def _pg_as_owner(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, drop to the `postgres` system user."""
    if os.geteuid() != 0:
        return argv
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv]


def _pg_bin(tool: str) -> str:
    bin_dir = installer.postgres_bin_dir()
    if bin_dir is None:
        raise installer.InstallError("PostgreSQL is not installed (apt-get install postgresql)")
    return str(bin_dir / tool)


def _prepare_postgres(ctx: Context) -> None:
    base = _pg_dir(ctx.settings)
    data = base / "data"
    sockets = base / "run"
    sockets.mkdir(parents=True, exist_ok=True)
    if (data / "PG_VERSION").exists():
        _chown_to_postgres(base)
        return
    data.mkdir(parents=True, exist_ok=True)
    pwfile = base / "initdb.pw"
    write_private_file(pwfile, ctx.secret["POSTGRES_PASSWORD"] + "\n")
    _chown_to_postgres(base)
    try:
        result = subprocess.run(
            _pg_as_owner([_pg_bin("initdb"), "-D", str(data), "-U", POSTGRES_USER,
                          f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8",
                          "--locale=C.UTF-8"]),
            capture_output=True, text=True)
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise installer.InstallError(f"initdb failed:\n{result.stdout}\n{result.stderr}")


def _chown_to_postgres(path: Path) -> None:
    if os.geteuid() != 0:
        return
    owner = pwd.getpwnam("postgres")
    for root, dirs, files in os.walk(path):
        os.chown(root, owner.pw_uid, owner.pw_gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), owner.pw_uid, owner.pw_gid)


def _adopt_postgres(s: Settings) -> int | None:
    """A postmaster left running without our PID file (e.g. after a crash of `up`) is ours:
    PostgreSQL's own postmaster.pid says which process owns the data directory."""
    lock = _pg_dir(s) / "data" / "postmaster.pid"
    try:
        pid = int(lock.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if b"postgres" in cmdline else None


# The server settings of both local mode and docker-compose (tests/unit/test_compose.py checks
# they agree). The staging and outbox tables take random-UUID keys, so every write lands on a
# random index page: a buffer pool that holds those indexes, and checkpoints far enough apart
# that a page's first change after one (a full-page image in the WAL) is rare and compressed.
POSTGRES_SERVER_SETTINGS: dict[str, str] = {
    "max_connections": "200",
    "shared_buffers": "512MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "wal_compression": "lz4",
    "synchronous_commit": "on",
    "log_min_messages": "warning",
}


def _postgres_command(ctx: Context) -> list[str]:
    s = ctx.settings
    base = _pg_dir(s)
    return _pg_as_owner([
        _pg_bin("postgres"), "-D", str(base / "data"), "-p", str(s.postgres_port),
        "-c", f"listen_addresses={s.host}", "-c", f"unix_socket_directories={base / 'run'}",
        *(arg for name, value in POSTGRES_SERVER_SETTINGS.items()
          for arg in ("-c", f"{name}={value}")),
    ])


def pg_connect(ctx: Context, database: str = "postgres", timeout: int = 15,
               role: str = POSTGRES_USER):
    """A connection as `role` (default: the superuser, for `up` and the tests)."""
    # Generous: a busy 2-core machine (a Spark run, compaction) can take seconds to accept.
    import psycopg

    secret = "POSTGRES_PASSWORD" if role == POSTGRES_USER else POSTGRES_PASSWORD_NAMES[role]
    return psycopg.connect(host=ctx.settings.host, port=ctx.settings.postgres_port,
                           user=role, password=ctx.secret[secret],
                           dbname=database, connect_timeout=timeout, autocommit=True)


@contextmanager
def scratch_database(ctx: Context, prefix: str = "userstream_scratch") -> Iterator[str]:
    """A fresh database owned and migrated like `userstream`, dropped on exit: tests and
    benchmarks stage and relay there, never in the pipeline's own outbox."""
    from include.provisioning import migrate_postgres

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    owner = names.POSTGRES_OWNER_ROLE
    with pg_connect(ctx) as admin:
        admin.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
    try:
        with pg_connect(ctx, name, role=owner) as conn:
            migrate_postgres(conn)
        yield name
    finally:
        with pg_connect(ctx) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_health(ctx: Context) -> str:
    try:
        with pg_connect(ctx, timeout=3) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:
        raise Unhealthy(str(exc).strip()) from exc
    return f"PostgreSQL {version}"


# --- Kafka ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    """One node of a service that runs on several addresses in `cluster` (Kafka, Cassandra)."""

    service: str  # the service's name: `kafka` in `single`, `kafka-2` in `cluster`
    index: int  # 1-based: Kafka's node.id
    host: str


def nodes(settings: Settings, kind: str) -> list[Node]:
    if not settings.clustered:
        return [Node(kind, 1, settings.host)]
    return [Node(f"{kind}-{i}", i, host) for i, host in enumerate(settings.node_hosts, 1)]


def _kafka_paths(s: Settings, node: Node) -> tuple[Path, Path, Path]:
    base = s.state_dir / node.service
    return base / "server.properties", base / "data", CONF_DIR / "kafka-log4j2.properties"


def _kafka_classpath(s: Settings) -> str:
    return str(s.jvm_dir / "kafka" / "lib" / "*")


def _kafka_cluster_id(s: Settings, java: list[str]) -> str:
    """Every node of one Kafka cluster is formatted with the same cluster id, kept here."""
    path = s.state_dir / "kafka-cluster-id"
    if not path.exists():
        cluster_id = subprocess.run([*java, "random-uuid"], capture_output=True, text=True,
                                    check=True).stdout.strip().splitlines()[-1]
        path.write_text(cluster_id + "\n")
    return path.read_text().strip()


def _prepare_kafka(ctx: Context, node: Node) -> None:
    s = ctx.settings
    config, data, log4j = _kafka_paths(s, node)
    cluster = nodes(s, "kafka")
    # Internal topics on every broker, up to 3, and writes acknowledged by all but one of them.
    replication = min(len(cluster), 3)
    render_conf("kafka-server.properties", config, host=node.host, port=s.kafka_port,
            controller_port=s.kafka_controller_port, data_dir=data, node_id=node.index,
            voters=",".join(f"{n.index}@{n.host}:{s.kafka_controller_port}" for n in cluster),
            replication=replication, min_isr=max(1, replication - 1),
            admin=names.KAFKA_ADMIN_PRINCIPAL,
            admin_password=ctx.secret[KAFKA_PASSWORD_NAMES[names.KAFKA_ADMIN_PRINCIPAL]])
    if (data / "meta.properties").exists():
        return
    java = ["java", "-cp", _kafka_classpath(s), f"-Dlog4j2.configurationFile={log4j}",
            "kafka.tools.StorageTool"]
    result = subprocess.run([*java, "format", "-t", _kafka_cluster_id(s, java), "-c", str(config)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise installer.InstallError(f"kafka storage format failed:\n{result.stderr[-2000:]}")


def _kafka_command(ctx: Context, node: Node) -> list[str]:
    s = ctx.settings
    config, _, log4j = _kafka_paths(s, node)
    return ["java", f"-Xms{s.kafka_heap}", f"-Xmx{s.kafka_heap}", "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}", "-cp", _kafka_classpath(s),
            "kafka.Kafka", str(config)]


def kafka_client(settings: Settings, principal: str = names.KAFKA_ADMIN_PRINCIPAL
                 ) -> dict[str, str]:
    """librdkafka settings to log in as one of the pipeline's principals (default: the admin),
    with its password from the state folder's secrets."""
    password = read_env_file(settings.secrets_file).get(KAFKA_PASSWORD_NAMES[principal], "")
    return {"bootstrap.servers": settings.kafka_bootstrap,
            **provisioning.kafka_login(principal, password)}


def _kafka_health(ctx: Context, node: Node) -> str:
    """Healthy when this broker answers and is a live member of its cluster; says how many
    partitions have fewer in-sync replicas than replicas (0 once a returned broker caught up)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({**kafka_client(ctx.settings),
                         "bootstrap.servers": f"{node.host}:{ctx.settings.kafka_port}",
                         "socket.connection.setup.timeout.ms": 2000, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=3)
    except Exception as exc:
        raise Unhealthy(str(exc)) from exc
    if node.index not in metadata.brokers:
        raise Unhealthy(f"broker {node.index} is not a live member of the cluster "
                        f"(live: {sorted(metadata.brokers)})")
    partitions = [p for topic in metadata.topics.values() for p in topic.partitions.values()]
    under = sum(len(p.isrs) < len(p.replicas) for p in partitions)
    return (f"{len(metadata.brokers)} broker(s), {len(metadata.topics)} topic(s), "
            f"{under} under-replicated partition(s)")


def kafka_services(settings: Settings) -> list[Service]:
    return [Service(node.service, describe(f"Kafka (KRaft) on {node.host}:{{s.kafka_port}}"),
                    partial(_kafka_command, node=node), partial(_kafka_health, node=node),
                    prepare=partial(_prepare_kafka, node=node), host=node.host, cluster="kafka",
                    ports=lambda s: (s.kafka_port, s.kafka_controller_port))
            for node in nodes(settings, "kafka")]


# --- Apicurio Registry ------------------------------------------------------------------------

def _registry_command(ctx: Context) -> list[str]:
    s = ctx.settings
    return ["java", f"-Xmx{s.registry_heap}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-jar", str(installer.registry_runner(s))]


def _registry_env(ctx: Context) -> dict[str, str]:
    s = ctx.settings
    # Quarkus maps these to apicurio.* / quarkus.* properties; env keeps the password out of `ps`.
    return {
        "QUARKUS_HTTP_HOST": s.host,
        "QUARKUS_HTTP_PORT": str(s.registry_port),
        "APICURIO_STORAGE_KIND": "sql",
        "APICURIO_STORAGE_SQL_KIND": "postgresql",
        "APICURIO_DATASOURCE_URL":
            f"jdbc:postgresql://{s.host}:{s.postgres_port}/{names.REGISTRY_DATABASE}",
        "APICURIO_DATASOURCE_USERNAME": names.POSTGRES_REGISTRY_ROLE,
        "APICURIO_DATASOURCE_PASSWORD":
            ctx.secret[POSTGRES_PASSWORD_NAMES[names.POSTGRES_REGISTRY_ROLE]],
        "QUARKUS_LOG_LEVEL": "WARN",
        "QUARKUS_LOG_CATEGORY__IO_APICURIO__LEVEL": "INFO",
    }


def http_get_json(url: str, timeout: float = 3.0, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _registry_health(ctx: Context) -> str:
    try:
        subjects = http_get_json(f"{ctx.settings.registry_url}/subjects")
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise Unhealthy(str(exc)) from exc
    return f"{len(subjects)} subject(s)"


# --- Cassandra ------------------------------------------------------------------------------

def _cassandra_paths(s: Settings, node: Node) -> tuple[Path, Path]:
    base = s.state_dir / node.service
    return base / "cassandra.yaml", base / "data"


def _prepare_cassandra(ctx: Context, node: Node) -> None:
    s = ctx.settings
    config, data = _cassandra_paths(s, node)
    cluster = nodes(s, "cassandra")
    render_conf("cassandra.yaml", config, host=node.host, port=s.cassandra_port,
            storage_port=s.cassandra_storage_port, data_dir=data,
            seeds=f"{cluster[0].host}:{s.cassandra_storage_port}",
            token_replication=min(len(cluster), 3))


def _cassandra_command(ctx: Context, node: Node) -> list[str]:
    s = ctx.settings
    config, data = _cassandra_paths(s, node)
    lib = s.jvm_dir / "cassandra" / "lib"
    jamm = next(lib.glob("jamm-*.jar"))
    options = [line.strip() for line in (CONF_DIR / "cassandra-jvm17.options").read_text()
               .splitlines() if line.strip() and not line.startswith("#")]
    args: list[str] = []
    for option in options:
        args += option.split(" ", 1)
    if s.clustered:
        # A joining node waits this long to learn the ring (default 30 s); loopback is quick.
        args.append("-Dcassandra.ring_delay_ms=10000")
    return ["java", f"-Xms{s.cassandra_heap}", f"-Xmx{s.cassandra_heap}", *args,
            f"-javaagent:{jamm}", f"-Dcassandra.config=file://{config}",
            f"-Dcassandra.storagedir={data}",
            # The default superuser exists at once (not 10 s later) for provisioning to replace.
            "-Dcassandra.superuser_setup_delay_ms=0",
            f"-Dlogback.configurationFile={CONF_DIR / 'cassandra-logback.xml'}",
            "-cp", f"{lib}/*", "org.apache.cassandra.service.CassandraDaemon"]


def airflow_auth_header(ctx: Context, timeout: float = 30) -> dict[str, str]:
    """A bearer token for the local Airflow REST API, as the generated admin user."""
    import requests

    response = requests.post(f"{ctx.settings.airflow_url}/auth/token", timeout=timeout, json={
        "username": AIRFLOW_ADMIN_USER, "password": ctx.secret["AIRFLOW_ADMIN_PASSWORD"]})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def cassandra_session(settings: Settings, timeout: float = 5.0,
                      role: str = names.CASSANDRA_ADMIN_ROLE, password: str | None = None,
                      only_host: str | None = None):
    """A session as one of the pipeline's roles (default: the generated superuser), with its
    password from the state folder's secrets unless given; to every node, or to `only_host`."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import RoundRobinPolicy, WhiteListRoundRobinPolicy

    if password is None:
        password = read_env_file(settings.secrets_file).get(CASSANDRA_PASSWORD_NAMES[role], "")
    hosts = [only_host] if only_host else settings.node_hosts
    policy = WhiteListRoundRobinPolicy(hosts) if only_host else RoundRobinPolicy()
    profile = ExecutionProfile(load_balancing_policy=policy, request_timeout=30)
    cluster = Cluster(hosts, port=settings.cassandra_port, connect_timeout=timeout,
                      execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                      protocol_version=provisioning.CASSANDRA_PROTOCOL_VERSION,
                      auth_provider=PlainTextAuthProvider(role, password))
    try:
        return cluster, cluster.connect()
    except Exception:
        cluster.shutdown()
        raise


def _cassandra_health(ctx: Context, node: Node) -> str:
    """Up once this node answers CQL. Before provisioning has replaced the default superuser,
    the generated one's login is refused: Cassandra answered, which is all this checks."""
    import logging

    from cassandra.cluster import NoHostAvailable

    logging.getLogger("cassandra").setLevel(logging.CRITICAL)
    try:
        cluster, session = cassandra_session(ctx.settings, timeout=2, only_host=node.host)
    except NoHostAvailable as exc:
        if provisioning.refused_login(exc):
            return "Cassandra (its roles are not provisioned yet)"
        raise Unhealthy(str(exc)[:200]) from exc
    except Exception as exc:
        raise Unhealthy(str(exc)[:200]) from exc
    try:
        version = session.execute("SELECT release_version FROM system.local").one()[0]
        peers = len(session.execute("SELECT peer FROM system.peers_v2").all())
    finally:
        cluster.shutdown()
    return f"Cassandra {version}" + (f", {peers} peer(s)" if ctx.settings.clustered else "")


def cassandra_services(settings: Settings) -> list[Service]:
    # Nodes join one at a time: two nodes bootstrapping at once are refused.
    return [Service(node.service, describe(f"Cassandra on {node.host}:{{s.cassandra_port}}"),
                    partial(_cassandra_command, node=node), partial(_cassandra_health, node=node),
                    prepare=partial(_prepare_cassandra, node=node), host=node.host,
                    serial=settings.clustered, stop_timeout_s=60, cluster="cassandra",
                    ports=lambda s: (s.cassandra_port, s.cassandra_storage_port))
            for node in nodes(settings, "cassandra")]


# --- Airflow --------------------------------------------------------------------------------

def _venv_bin(program: str) -> str:
    return str(Path(os.environ.get("VIRTUAL_ENV", PROJECT_ROOT / ".venv")) / "bin" / program)


def airflow_command(*args: str) -> list[str]:
    return [_venv_bin("airflow"), *args]


def prepare_airflow(ctx: Context) -> None:
    state = ctx.settings.state_dir / "airflow"
    state.mkdir(parents=True, exist_ok=True)
    write_private_file(state / "passwords.json",
                       json.dumps({AIRFLOW_ADMIN_USER: ctx.secret["AIRFLOW_ADMIN_PASSWORD"]}))
    result = subprocess.run(airflow_command("db", "migrate"), env=ctx.env, capture_output=True,
                            text=True, cwd=PROJECT_ROOT)
    if result.returncode != 0:
        raise installer.InstallError(
            f"`airflow db migrate` failed:\n{(result.stdout + result.stderr)[-3000:]}")


def _airflow_component_health(component: str) -> Callable[[Context], str]:
    def check(ctx: Context) -> str:
        try:
            health = http_get_json(f"{ctx.settings.airflow_url}/api/v2/monitor/health")
        except (OSError, urllib.error.URLError, ValueError) as exc:
            raise Unhealthy(str(exc)) from exc
        status = health.get(component, {}).get("status")
        if status != "healthy":
            raise Unhealthy(f"{component}: {status or 'unknown'}")
        return f"{component} healthy"

    return check


def _airflow_api_health(ctx: Context) -> str:
    return _airflow_component_health("metadatabase")(ctx).replace("metadatabase", "API, DB")


# --- randomuser-compatible API (offline source) ----------------------------------------------

def _randomuser_command(ctx: Context) -> list[str]:
    s = ctx.settings
    return [_venv_bin("python"), "-m", "local_stack.randomuser_api", "--host", s.host, "--port",
            str(s.randomuser_port)]


def _randomuser_health(ctx: Context) -> str:
    try:
        http_get_json(f"{ctx.settings.randomuser_url}/__health")
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise Unhealthy(str(exc)) from exc
    return "serving /api/1.4/"


# --- alert inbox (the local alerts_webhook) --------------------------------------------------

def _alert_inbox_command(ctx: Context) -> list[str]:
    s = ctx.settings
    return [_venv_bin("python"), "-m", "local_stack.alert_inbox", "--host", s.host,
            "--port", str(s.alerts_port), "--inbox", str(s.alert_inbox)]


def _alert_inbox_health(ctx: Context) -> str:
    try:
        http_get_json(f"{ctx.settings.alerts_url}/__health")
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise Unhealthy(str(exc)) from exc
    return f"keeping alerts in {ctx.settings.alert_inbox}"


def describe(template: str) -> Callable[[Settings], str]:
    return lambda s: template.format(s=s)


OFFLINE_SOURCE_ONLY = frozenset({"randomuser-api"})


def core_services(settings: Settings) -> list[Service]:
    """Every topology's services, in start order; in `cluster`, Kafka and Cassandra once per
    node. The Airflow services come last (named `airflow-*`)."""
    executor = "CeleryExecutor" if settings.clustered else "LocalExecutor"
    return [
        Service("postgres", describe("PostgreSQL on {s.host}:{s.postgres_port}"),
                _postgres_command, _postgres_health, prepare=_prepare_postgres,
                stop_signal=signal.SIGINT, ports=lambda s: (s.postgres_port,),
                adopt=_adopt_postgres),  # SIGINT = fast shutdown; SIGTERM waits for clients
        *kafka_services(settings),
        Service("registry",
                describe("Apicurio Registry (Confluent API) on {s.registry_url}"),
                _registry_command, _registry_health, extra_env=_registry_env,
                ports=lambda s: (s.registry_port,)),
        *cassandra_services(settings),
        Service("randomuser-api",
                describe("randomuser-compatible API on {s.randomuser_url}/api/1.4/ "
                         "(USERSTREAM_SOURCE=local only)"),
                _randomuser_command, _randomuser_health, ports=lambda s: (s.randomuser_port,)),
        Service("alert-inbox", describe("alert webhook receiver on {s.alerts_url}/alerts"),
                _alert_inbox_command, _alert_inbox_health, ports=lambda s: (s.alerts_port,)),
        Service("airflow-api-server", describe("Airflow UI and API on {s.airflow_url}"),
                lambda ctx: airflow_command("api-server"), _airflow_api_health,
                ports=lambda s: (s.airflow_port,)),
        Service("airflow-scheduler", describe(f"Airflow scheduler ({executor})"),
                lambda ctx: airflow_command("scheduler", "--skip-serve-logs"),
                _airflow_component_health("scheduler")),
        Service("airflow-dag-processor", describe("Airflow DAG processor"),
                lambda ctx: airflow_command("dag-processor"),
                _airflow_component_health("dag_processor")),
        Service("airflow-triggerer", describe("Airflow triggerer"),
                lambda ctx: airflow_command("triggerer", "--skip-serve-logs"),
                _airflow_component_health("triggerer")),
    ]
