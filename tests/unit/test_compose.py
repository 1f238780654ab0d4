"""docker-compose.yml, checked without a Docker engine: it parses against the Compose
specification's JSON schema (tests/fixtures/compose_spec.json), and what it points at exists in
the repo: build contexts and Dockerfiles, bind-mounted paths, the init module, the settings and
connection names local mode uses."""

from __future__ import annotations

import importlib.util
import json
import re
import string
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
REQUIRED = {"postgres", "kafka", "schema-registry", "kafka-ui", "spark-master", "spark-worker",
            "cassandra", "airflow-init", "airflow-api-server", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer"}


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_the_file_is_valid_against_the_compose_specification():
    schema = json.loads((ROOT / "tests" / "fixtures" / "compose_spec.json").read_text())
    jsonschema.validate(COMPOSE, schema)


def test_an_invalid_file_is_refused_by_the_same_check():
    schema = json.loads((ROOT / "tests" / "fixtures" / "compose_spec.json").read_text())
    broken = {"services": {"kafka": {"image": "x", "healthcheck": {"interval": 5}}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_every_service_of_the_stack_is_declared_with_a_health_check_or_a_healthy_dependency():
    assert set(SERVICES) >= REQUIRED
    for name in ("postgres", "kafka", "schema-registry", "cassandra", "spark-master",
                 "airflow-api-server", "airflow-scheduler"):
        assert "healthcheck" in SERVICES[name], name
    for name in ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor",
                 "airflow-triggerer"):
        assert SERVICES[name]["depends_on"]["airflow-init"]["condition"] == \
            "service_completed_successfully"


def test_images_pin_the_versions_the_project_supports():
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:4.")
    assert SERVICES["cassandra"]["image"] == "cassandra:5.0"
    assert "spark:3.5." in SERVICES["spark-master"]["image"]
    assert SERVICES["spark-master"]["image"] == SERVICES["spark-worker"]["image"]
    from_lines = re.findall(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert any(line.startswith("apache/airflow:3.3") for line in from_lines)


def test_build_contexts_and_dockerfile_sources_exist():
    for name, service in SERVICES.items():
        build = service.get("build")
        if build:
            context = ROOT / build["context"]
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
    for source in re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+(?: \S+)*) \S+$",
                             (ROOT / "Dockerfile").read_text(), re.M):
        for path in source.split():
            assert (ROOT / path).exists(), f"Dockerfile copies {path}, which is not in the repo"


def test_bind_mounts_and_env_files_point_at_files_in_the_repo():
    named = set(COMPOSE.get("volumes") or {})
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts {source}, missing"
            else:
                assert source in named, f"{name} uses undeclared volume {source}"
        for env_file in service.get("env_file", []):
            template = ROOT / f"{env_file}.example"
            assert (ROOT / env_file).exists() or template.is_file(), env_file
    assert {"postgres-data", "cassandra-data", "checkpoints"} <= named


def test_commands_run_modules_and_scripts_that_exist():
    init = " ".join(SERVICES["airflow-init"]["command"])
    assert "airflow db migrate" in init
    modules = re.findall(r"python -m (\S+)", init)
    assert modules == ["include.provisioning"], init
    assert importlib.util.find_spec(modules[0]) is not None
    for name in ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor",
                 "airflow-triggerer"):
        command = SERVICES[name]["command"]
        assert command[0] == "airflow" and command[1] == name.removeprefix("airflow-")


def test_settings_and_connections_use_local_modes_names():
    from local_stack.environment import connections
    from local_stack.settings import SECRET_NAMES, Settings

    local_env = connections(Settings.from_env(), {"POSTGRES_PASSWORD": "x"})
    compose_env = _environment(SERVICES["airflow-scheduler"])
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=",
                                (ROOT / ".env.example").read_text(), re.M))
    for key in compose_env:
        if key.startswith("AIRFLOW_CONN_"):
            assert key in local_env, f"{key} is not a connection local mode defines"
        if key.startswith("USERSTREAM_"):
            assert key in documented, f"{key} is not documented in .env.example"
    connections = {k for k in local_env if k.startswith("AIRFLOW_CONN_")}
    assert connections <= set(compose_env), connections - set(compose_env)
    generated = set(SECRET_NAMES)  # by `make compose-env`, never set in .env
    for variable in re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()):
        assert (variable in documented or variable in generated
                or variable.startswith("AIRFLOW_CONN_")), variable


def test_postgres_runs_with_local_modes_server_settings():
    from local_stack.services import POSTGRES_SERVER_SETTINGS

    command = [str(part) for part in SERVICES["postgres"]["command"]]
    assert command[0] == "postgres"
    flags, values = command[1::2], command[2::2]
    assert set(flags) == {"-c"} and len(flags) == len(values), command
    settings = dict(value.split("=", 1) for value in values)
    assert settings == POSTGRES_SERVER_SETTINGS


def _published(service: dict) -> list[str]:
    return [str(port) if not isinstance(port, dict) else port.get("host_ip", "") + ":"
            for port in service.get("ports", [])]


def test_cassandra_requires_a_login_and_each_connection_has_its_role_in_both_modes():
    from include import names

    template = (ROOT / "local_stack" / "conf" / "cassandra.yaml").read_text()
    local = yaml.safe_load(string.Template(template).safe_substitute(data_dir="/d"))
    options = dict(option.removeprefix("-D").split("=", 1) for option in
                   _environment(SERVICES["cassandra"])["JVM_EXTRA_OPTS"].split())
    assert options["cassandra.config.allow_system_properties"] == "true"
    for setting in ("authenticator", "authorizer"):
        assert options[f"cassandra.settings.{setting}"] == local[setting]
    assert local["authenticator"] == "PasswordAuthenticator"
    assert local["authorizer"] == "CassandraAuthorizer"
    airflow = _environment(SERVICES["airflow-scheduler"])
    for conn_id, role in names.CASSANDRA_CONN_ROLES.items():
        conn = json.loads(airflow[f"AIRFLOW_CONN_{conn_id.upper()}"])
        assert conn["login"] == role
        assert conn["extra"] == {"protocol_version": 5}, conn_id
        assert re.fullmatch(r"\$\{CASSANDRA_\w+_PASSWORD\}", conn["password"]), conn


def test_only_postgres_init_holds_the_postgres_superuser_and_each_connection_has_its_role():
    from include import names

    holders = {name for name, service in SERVICES.items()
               if "${POSTGRES_PASSWORD}" in json.dumps(service.get("environment") or {})}
    assert holders == {"postgres", "postgres-init"}, holders
    init = _environment(SERVICES["postgres-init"])
    for role in names.POSTGRES_LOGIN_ROLES:
        setting = names.postgres_password_setting(role)
        assert init[setting] == f"${{{setting}}}", setting
    airflow = _environment(SERVICES["airflow-scheduler"])
    for conn_id, role in names.POSTGRES_CONN_ROLES.items():
        conn = json.loads(airflow[f"AIRFLOW_CONN_{conn_id.upper()}"])
        assert conn["login"] == role
        assert conn["password"] == f"${{{names.postgres_password_setting(role)}}}"
    assert airflow["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith(
        f"postgresql+psycopg2://{names.POSTGRES_AIRFLOW_ROLE}:"
        f"${{{names.postgres_password_setting(names.POSTGRES_AIRFLOW_ROLE)}}}@")
    registry = _environment(SERVICES["schema-registry"])
    assert registry["APICURIO_DATASOURCE_USERNAME"] == names.POSTGRES_REGISTRY_ROLE


def test_only_the_airflow_ui_is_published_by_default_and_every_port_on_loopback():
    default = {name for name, service in SERVICES.items()
               if service.get("ports") and not service.get("profiles")}
    assert default == {"airflow-api-server"}
    for name, service in SERVICES.items():
        for port in _published(service):
            # One setting opens them; unset, Docker binds them to loopback only.
            assert port.startswith("${USERSTREAM_BIND_ADDRESS:-127.0.0.1}:"), (name, port)


def test_the_admin_uis_are_behind_a_profile_that_is_off_by_default():
    for name in ("kafka-ui", "spark-ui"):
        assert SERVICES[name]["profiles"] == ["ui"], name
    assert "ports" not in SERVICES["spark-master"]


def test_no_secret_is_set_in_the_repo_or_on_a_command_line():
    example = (ROOT / ".env.example").read_text()
    assert not re.search(r"^\s*(POSTGRES_PASSWORD|AIRFLOW_\w*(SECRET|KEY|PASSWORD)\w*)=", example,
                         re.M)
    env = _environment(SERVICES["airflow-api-server"])
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith(
        "/opt/userstream/auth/")
    init = SERVICES["airflow-init"]
    assert _environment(init)["AIRFLOW_ADMIN_PASSWORD"] == "${AIRFLOW_ADMIN_PASSWORD}"
    for name, service in SERVICES.items():
        command = " ".join(service.get("command") or [])
        assert "${" not in command, f"{name} interpolates a value into its command line"


def test_kafka_takes_only_logins_over_tls_and_each_connection_has_its_principal():
    from include import names

    kafka = _environment(SERVICES["kafka"])
    protocols = dict(item.split(":") for item in
                     kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    for listener in kafka["KAFKA_LISTENERS"].split(","):
        assert protocols[listener.split("://")[0]].startswith("SASL_"), listener
    assert [protocols[listener.split("://")[0]] for listener in
            kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")] == ["SASL_SSL"]
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert kafka["KAFKA_SUPER_USERS"] == f"User:{names.KAFKA_ADMIN_PRINCIPAL}"
    airflow = _environment(SERVICES["airflow-scheduler"])
    for conn_id, principal in names.KAFKA_CONN_PRINCIPALS.items():
        extra = json.loads(airflow[f"AIRFLOW_CONN_{conn_id.upper()}"])["extra"]
        assert extra["security.protocol"] == "SASL_SSL", conn_id
        assert extra["sasl.username"] == principal, conn_id
        assert re.fullmatch(r"\$\{KAFKA_\w+_PASSWORD\}", extra["sasl.password"]), conn_id
        ca_dir = extra["ssl.ca.location"].rsplit("/", 1)[0]
        # The Airflow services (the relay, the Spark driver) and the executors find the CA.
        for name in ("airflow-scheduler", "spark-worker"):
            assert f"kafka-ca:{ca_dir}:ro" in SERVICES[name]["volumes"], name


def test_only_the_broker_and_its_certificate_step_see_the_brokers_secrets():
    holders = {name for name, service in SERVICES.items()
               if any(str(volume).startswith("kafka-secrets:")
                      for volume in service.get("volumes", []))}
    assert holders == {"kafka", "kafka-2", "kafka-3", "kafka-tls"}
    assert SERVICES["kafka"]["depends_on"]["kafka-tls"]["condition"] == \
        "service_completed_successfully"
    assert "--command-config /etc/kafka/secrets/" in SERVICES["kafka"]["healthcheck"]["test"][1]


CLUSTER_PROFILE = {"kafka-2", "kafka-3", "cassandra-2", "cassandra-3", "spark-worker-2", "redis",
                   "airflow-worker-1", "airflow-worker-2"}


def _with_settings(value: str, settings: dict[str, str]) -> str:
    """`${NAME:-default}` as compose interpolates it with these settings (secrets stay as they
    are)."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: settings.get(m[1], m[2]), value)


def _cluster_settings() -> dict[str, str]:
    lines = (ROOT / "compose" / "cluster.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_cluster_profile_adds_every_node_and_nothing_else_runs_it_by_default():
    profiled = {name for name, service in SERVICES.items()
                if service.get("profiles") == ["cluster"]}
    assert profiled == CLUSTER_PROFILE
    assert _cluster_settings()["COMPOSE_PROFILES"] == "cluster"
    for name in CLUSTER_PROFILE:
        service = SERVICES[name]
        assert "healthcheck" in service or name.startswith("spark-worker"), name
    # Cassandra's nodes join one after the other.
    assert SERVICES["cassandra-3"]["depends_on"] == {"cassandra-2": {"condition":
                                                                     "service_healthy"}}
    assert SERVICES["cassandra-2"]["depends_on"] == {"cassandra": {"condition": "service_healthy"}}
    for node in ("kafka", "kafka-2", "kafka-3"):
        env = _environment(SERVICES[node])
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"SASL_SSL://{node}:9092"
        assert f"dns:{node}" in _environment(SERVICES["kafka-tls"])["KAFKA_TLS_SAN"]
    brokers = ("kafka", "kafka-2", "kafka-3")
    assert {_environment(SERVICES[node])["KAFKA_NODE_ID"] for node in brokers} == {"1", "2", "3"}
    for worker in ("airflow-worker-1", "airflow-worker-2"):
        assert _environment(SERVICES[worker])["USERSTREAM_SPARK_DRIVER_HOST"] == worker


def test_the_cluster_profile_uses_local_modes_cluster_settings():
    """compose/cluster.env sets what `make up TOPOLOGY=cluster` sets: the same replication, a
    3-voter quorum and every node in the connections."""
    from dataclasses import replace

    from local_stack.environment import replication_settings
    from local_stack.settings import Settings

    settings = _cluster_settings()
    local = replication_settings(replace(Settings(state_dir=ROOT), topology="cluster"))
    assert {key: settings[key] for key in local} == local
    airflow = {k: _with_settings(v, settings)
               for k, v in _environment(SERVICES["airflow-scheduler"]).items()}
    assert airflow["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for key, value in local.items():
        assert airflow[key] == value, key
    kafka = json.loads(airflow["AIRFLOW_CONN_KAFKA_STREAM"])["extra"]["bootstrap.servers"]
    assert kafka.split(",") == ["kafka:9092", "kafka-2:9092", "kafka-3:9092"]
    cassandra = json.loads(airflow["AIRFLOW_CONN_CASSANDRA_STREAM"])["host"]
    assert cassandra.split(",") == ["cassandra", "cassandra-2", "cassandra-3"]
    broker = {k: _with_settings(v, settings) for k, v in _environment(SERVICES["kafka"]).items()}
    assert broker["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"
    assert broker["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
    assert broker["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    single = {k: _with_settings(v, {}) for k, v in _environment(SERVICES["kafka"]).items()}
    assert single["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
