"""Local-mode settings: every knob has a documented default and a USERSTREAM_* environment name.

The same names are used by docker-compose (see `.env.example`), so one configuration serves both.
Secrets are never defaults: they are generated once into `<state>/secrets.env` (git-ignored).
"""

from __future__ import annotations

import os
import pwd
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from include import names

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


# `single`: one process per service. `cluster`: three Kafka brokers, three Cassandra nodes, a Spark
# standalone master with two workers and two Celery workers for Airflow, on loopback addresses.
TOPOLOGIES = ("single", "cluster")
CLUSTER_SIZE = 3


def default_state_dir(topology: str) -> Path:
    """Each topology keeps its own state folder: a broker's or a node's data belongs to one
    cluster, and the stream's checkpoint to one Kafka cluster's offsets."""
    return PROJECT_ROOT / (".local" if topology == "single" else f".local-{topology}")


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    host: str = "127.0.0.1"
    postgres_port: int = 5433
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    registry_port: int = 8081
    cassandra_port: int = 9042
    cassandra_storage_port: int = 7000
    airflow_port: int = 8080
    randomuser_port: int = 8000
    alerts_port: int = 8025
    kafka_heap: str = "512m"
    cassandra_heap: str = "1G"
    registry_heap: str = "256m"
    source: str = "api"
    startup_timeout_s: int = 240
    start_paused: bool = False
    first_landing_timeout_s: int = 600
    topology: str = "single"
    # The installed programs (the JVM services, the Spark runtime and jars) when not the state
    # folder: the cluster topology uses `single`'s, since they are the same programs.
    install_dir: Path | None = None
    spark_master_port: int = 7077
    spark_ui_port: int = 8090
    redis_port: int = 6379
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        topology = _env("USERSTREAM_TOPOLOGY", "") or "single"
        if topology not in TOPOLOGIES:
            raise ValueError(f"USERSTREAM_TOPOLOGY must be one of {', '.join(TOPOLOGIES)}, "
                             f"got {topology!r}")
        state = Path(_env("USERSTREAM_STATE_DIR", str(default_state_dir(topology)))).resolve()
        source = _env("USERSTREAM_SOURCE", "api")
        if source not in {"api", "local"}:
            raise ValueError(f"USERSTREAM_SOURCE must be 'api' or 'local', got {source!r}")
        return cls(
            state_dir=state,
            host=_env("USERSTREAM_HOST", "127.0.0.1"),
            postgres_port=_env_int("USERSTREAM_POSTGRES_PORT", 5433),
            kafka_port=_env_int("USERSTREAM_KAFKA_PORT", 9092),
            kafka_controller_port=_env_int("USERSTREAM_KAFKA_CONTROLLER_PORT", 9093),
            registry_port=_env_int("USERSTREAM_REGISTRY_PORT", 8081),
            cassandra_port=_env_int("USERSTREAM_CASSANDRA_PORT", 9042),
            cassandra_storage_port=_env_int("USERSTREAM_CASSANDRA_STORAGE_PORT", 7000),
            airflow_port=_env_int("USERSTREAM_AIRFLOW_PORT", 8080),
            randomuser_port=_env_int("USERSTREAM_RANDOMUSER_PORT", 8000),
            alerts_port=_env_int("USERSTREAM_ALERTS_PORT", 8025),
            kafka_heap=_env("USERSTREAM_KAFKA_HEAP", "512m"),
            cassandra_heap=_env("USERSTREAM_CASSANDRA_HEAP",
                                "1G" if topology == "single" else "768M"),
            registry_heap=_env("USERSTREAM_REGISTRY_HEAP", "256m"),
            source=source,
            startup_timeout_s=_env_int("USERSTREAM_STARTUP_TIMEOUT", 240),
            start_paused=_env_bool("USERSTREAM_START_PAUSED", False),
            first_landing_timeout_s=_env_int("USERSTREAM_FIRST_LANDING_TIMEOUT", 600),
            topology=topology,
            install_dir=(Path(os.environ["USERSTREAM_INSTALL_DIR"]).resolve()
                         if os.environ.get("USERSTREAM_INSTALL_DIR") else
                         None if topology == "single" else default_state_dir("single")),
            spark_master_port=_env_int("USERSTREAM_SPARK_MASTER_PORT", 7077),
            spark_ui_port=_env_int("USERSTREAM_SPARK_UI_PORT", 8090),
            redis_port=_env_int("USERSTREAM_REDIS_PORT", 6379),
        )

    @property
    def clustered(self) -> bool:
        return self.topology == "cluster"

    def node_host(self, index: int) -> str:
        """Node `index` (1-based) of a cluster: the next loopback addresses after `host`, so
        every node keeps the service's usual ports (how ccm runs Cassandra on one host)."""
        first, _, last = self.host.rpartition(".")
        return f"{first}.{int(last) + index - 1}"

    @property
    def node_hosts(self) -> list[str]:
        """The addresses of Kafka's and Cassandra's nodes: one in `single`, three in `cluster`."""
        return [self.node_host(i) for i in range(1, (CLUSTER_SIZE if self.clustered else 1) + 1)]

    # Folders under the state folder
    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def installs(self) -> Path:
        return self.install_dir or self.state_dir

    @property
    def jvm_dir(self) -> Path:
        return self.installs / "jvm"

    @property
    def spark_dir(self) -> Path:
        """Spark's scratch space (SPARK_LOCAL_DIRS) of this state folder."""
        return self.state_dir / "spark"

    @property
    def spark_jars_dir(self) -> Path:
        return self.installs / "spark" / "jars"

    @property
    def spark_venv(self) -> Path:
        return self.installs / "spark-venv"

    @property
    def spark_submit(self) -> Path:
        return self.spark_venv / "bin" / "spark-submit"

    @property
    def spark_python(self) -> Path:
        return self.spark_venv / "bin" / "python"

    @property
    def spark_jars(self) -> list[Path]:
        return sorted(self.spark_jars_dir.glob("*.jar"))

    @property
    def checkpoint_dir(self) -> Path:
        return self.state_dir / "checkpoints"

    @property
    def secrets_file(self) -> Path:
        return self.state_dir / "secrets.env"

    @property
    def env_file(self) -> Path:
        """Everything a client of the local stack needs (connections, Airflow settings)."""
        return self.state_dir / "userstream.env"

    # Endpoints
    @property
    def kafka_bootstrap(self) -> str:
        return ",".join(f"{host}:{self.kafka_port}" for host in self.node_hosts)

    @property
    def spark_master(self) -> str:
        return f"spark://{self.host}:{self.spark_master_port}" if self.clustered else "local[2]"

    @property
    def registry_url(self) -> str:
        return f"http://{self.host}:{self.registry_port}/apis/ccompat/v7"

    @property
    def airflow_url(self) -> str:
        return f"http://{self.host}:{self.airflow_port}"

    @property
    def alerts_url(self) -> str:
        return f"http://{self.host}:{self.alerts_port}"

    @property
    def alert_inbox(self) -> Path:
        return self.state_dir / "alerts" / "alerts.jsonl"

    @property
    def randomuser_url(self) -> str:
        return f"http://{self.host}:{self.randomuser_port}"


# Cassandra's passwords, one per role (include/names.py), by role name.
CASSANDRA_PASSWORD_NAMES = {names.CASSANDRA_ADMIN_ROLE: "CASSANDRA_ADMIN_PASSWORD",
                            names.CASSANDRA_STREAM_ROLE: "CASSANDRA_STREAM_PASSWORD",
                            names.CASSANDRA_READER_ROLE: "CASSANDRA_READER_PASSWORD"}
# Kafka's principals, by name.
KAFKA_PASSWORD_NAMES = {names.KAFKA_ADMIN_PRINCIPAL: "KAFKA_ADMIN_PASSWORD",
                        names.KAFKA_RELAY_PRINCIPAL: "KAFKA_RELAY_PASSWORD",
                        names.KAFKA_STREAM_PRINCIPAL: "KAFKA_STREAM_PASSWORD",
                        names.KAFKA_STATUS_PRINCIPAL: "KAFKA_STATUS_PASSWORD"}
# PostgreSQL's login roles (POSTGRES_PASSWORD is the superuser's, which only `up` and the tests
# use), by role name.
POSTGRES_PASSWORD_NAMES = {role: names.postgres_password_setting(role)
                           for role in names.POSTGRES_LOGIN_ROLES}
SECRET_NAMES = ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_ADMIN_PASSWORD",
                "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY",
                *CASSANDRA_PASSWORD_NAMES.values(),
                *POSTGRES_PASSWORD_NAMES.values(), *KAFKA_PASSWORD_NAMES.values())


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'")
    return values


def write_env_file(path: Path, values: dict[str, str], header: str) -> None:
    lines = [f"# {header}"]
    lines += [f"{key}='{value}'" for key, value in values.items()]
    write_private_file(path, "\n".join(lines) + "\n")


def write_private_file(path: Path, text: str) -> None:
    """A file that holds secrets, 0600 from its first byte: created new (`O_EXCL`, never through
    a link or into a file someone else prepared) under a temporary name, then renamed in place."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    tmp.replace(path)


def ensure_state_dir(state_dir: Path) -> None:
    """The state folder holds every service's data, logs and the secrets: 0700, so no other
    local user reads a record, a segment or a password. Run as root, PostgreSQL runs as the
    `postgres` user and must pass through it to its own folder: then 0710, group `postgres`."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        postgres = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    except KeyError:
        postgres = None
    if postgres is None:
        state_dir.chmod(0o700)
    else:
        os.chown(state_dir, -1, postgres.pw_gid)
        state_dir.chmod(0o710)


def _fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def ensure_secrets(settings: Settings) -> tuple[dict[str, str], bool]:
    """Returns the local secrets, generating any that are missing; True when something was new."""
    current = read_env_file(settings.secrets_file)
    generators = {
        "POSTGRES_PASSWORD": lambda: secrets.token_urlsafe(18),
        "REDIS_PASSWORD": lambda: secrets.token_urlsafe(18),
        "AIRFLOW_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(12),
        "AIRFLOW_FERNET_KEY": _fernet_key,
        "AIRFLOW_JWT_SECRET": lambda: secrets.token_urlsafe(32),
        "AIRFLOW_API_SECRET_KEY": lambda: secrets.token_urlsafe(32),
        **{name: lambda: secrets.token_urlsafe(18) for name in
           (*CASSANDRA_PASSWORD_NAMES.values(), *POSTGRES_PASSWORD_NAMES.values(),
            *KAFKA_PASSWORD_NAMES.values())},
    }
    created = False
    for name in SECRET_NAMES:
        if not current.get(name):
            current[name] = generators[name]()
            created = True
    if created:
        write_env_file(settings.secrets_file, current,
                       "Generated local-mode secrets. Never commit; `clean` deletes them.")
    return current, created
