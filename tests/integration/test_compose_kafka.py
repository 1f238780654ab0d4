"""docker compose's Kafka, run without a Docker engine: compose/kafka-tls.sh makes the
certificates and the broker's logins as the kafka-tls service does, and a scratch broker starts
from the kafka service's environment turned into properties the way the apache/kafka image does
it (KAFKA_A_B__C___D -> a.b_c-d; the keystore's password read from the files its SSL settings
name). Then the compose connections' own settings log in over TLS (issue: security)."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from include import names, provisioning
from include.stream.job import login_environment
from tests.integration.kafka_support import (
    create_topic,
    kafka_refuses,
    list_topics,
    produce_probe,
    read_probe,
)
from tests.stream_job_module import load_stream_job

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SECRETS_IN_IMAGE = "/etc/kafka/secrets"
CA_IN_CLIENTS = "/opt/userstream/kafka-ca"
# What the image leaves out of server.properties (kafka-propertiesSpec.json's excludes).
NOT_PROPERTIES = {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_LOG4J_OPTS", "KAFKA_JMX_OPTS"}


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _interpolated(value: str, variables: dict[str, str]) -> str:
    """Compose's `${NAME}` and `${NAME:-default}`."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}",
                  lambda m: variables.get(m[1]) or (m[2] or ""), str(value))


def _environment(service: str, variables: dict[str, str]) -> dict[str, str]:
    env = COMPOSE["services"][service]["environment"]
    return {key: _interpolated(value, variables) for key, value in env.items()}


def _property_name(variable: str) -> str:
    """The apache/kafka image's rule: `_` -> `.`, `__` -> `_`, `___` -> `-`, lower case."""
    name = re.sub(r"(?<!_)_(?!_)", ".", variable.removeprefix("KAFKA_"))
    return name.replace("___", "-").replace("__", "_").lower()


def _broker_properties(env: dict[str, str], secrets_dir: Path, data: Path, port: int,
                       controller_port: int) -> dict[str, str]:
    props = {_property_name(key): value for key, value in env.items()
             if key.startswith("KAFKA_") and key not in NOT_PROPERTIES}
    # The image's SSL step: the keystore's location and passwords from the files it names.
    props["ssl.keystore.location"] = f"{SECRETS_IN_IMAGE}/{env['KAFKA_SSL_KEYSTORE_FILENAME']}"
    for prop, credentials in (("ssl.key.password", "KAFKA_SSL_KEY_CREDENTIALS"),
                              ("ssl.keystore.password", "KAFKA_SSL_KEYSTORE_CREDENTIALS")):
        props[prop] = (secrets_dir / env[credentials]).read_text()
    moved = {}
    for key, value in props.items():
        value = value.replace(SECRETS_IN_IMAGE, str(secrets_dir))
        value = value.replace("kafka:9092", f"localhost:{port}")
        value = value.replace("kafka:9093", f"127.0.0.1:{controller_port}")
        moved[key] = value
    moved["listeners"] = (f"SASL_SSL://127.0.0.1:{port},"
                          f"CONTROLLER://127.0.0.1:{controller_port}")
    moved["log.dirs"] = str(data)
    return moved


def _kafka_classpath(settings) -> str:
    return str(settings.jvm_dir / "kafka" / "lib" / "*")


def _java(settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["java", "-cp", _kafka_classpath(settings), *args],
                          capture_output=True, text=True, timeout=timeout)


class ComposeBroker:
    def __init__(self, settings, root: Path) -> None:
        self.settings = settings
        self.secrets_dir, self.ca_dir, self.data = root / "secrets", root / "ca", root / "data"
        self.port, self.controller_port = _free_port(), _free_port()
        self.passwords = {principal: secrets.token_urlsafe(18)
                          for principal in names.KAFKA_CONN_PRINCIPALS.values()}
        self.variables = {f"KAFKA_{principal.removeprefix('userstream_').upper()}_PASSWORD":
                          password for principal, password in self.passwords.items()}
        self.process: subprocess.Popen | None = None

    def make_certificates(self) -> subprocess.CompletedProcess:
        env = {**os.environ, **_environment("kafka-tls", self.variables),
               "KAFKA_TLS_SECRETS_DIR": str(self.secrets_dir),
               "KAFKA_TLS_CA_DIR": str(self.ca_dir)}
        env.pop("KAFKA_TLS_OWNER")  # the image's user; here the files stay ours
        return subprocess.run(["bash", str(ROOT / "compose" / "kafka-tls.sh")], env=env,
                              capture_output=True, text=True, timeout=120, check=True)

    def start(self) -> None:
        env = _environment("kafka", self.variables)
        props = _broker_properties(env, self.secrets_dir, self.data, self.port,
                                   self.controller_port)
        config = self.secrets_dir.parent / "server.properties"
        config.write_text("".join(f"{key}={value}\n" for key, value in props.items()))
        cluster_id = _java(self.settings, "kafka.tools.StorageTool", "random-uuid"
                           ).stdout.split()[-1]
        formatted = _java(self.settings, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                          "-c", str(config))
        assert formatted.returncode == 0, formatted.stderr[-2000:]
        options = [env["KAFKA_OPTS"].replace(SECRETS_IN_IMAGE, str(self.secrets_dir)),
                   "-Xmx256m"]
        self.log = (self.secrets_dir.parent / "broker.log").open("w")
        self.process = subprocess.Popen(
            ["java", *options, "-cp", _kafka_classpath(self.settings), "kafka.Kafka",
             str(config)], stdout=self.log, stderr=subprocess.STDOUT)

    def client(self, conn_id: str) -> dict[str, str]:
        """The compose connection's librdkafka settings, pointed at this broker and CA."""
        conn = json.loads(_environment("airflow-scheduler", self.variables)[
            f"AIRFLOW_CONN_{conn_id.upper()}"])
        extra = conn["extra"]
        return {**extra, "bootstrap.servers": f"localhost:{self.port}",
                "ssl.ca.location": extra["ssl.ca.location"].replace(CA_IN_CLIENTS,
                                                                    str(self.ca_dir))}

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(30)
            self.log.close()


@pytest.fixture(scope="module")
def broker(stack, tmp_path_factory):
    from confluent_kafka.admin import AdminClient

    compose_broker = ComposeBroker(stack.settings, tmp_path_factory.mktemp("compose-kafka"))
    compose_broker.make_certificates()
    compose_broker.start()
    try:
        admin = compose_broker.client(names.KAFKA_ADMIN_CONN_ID)
        deadline = 90
        for _ in range(deadline):
            try:
                AdminClient({**admin, "log_level": 0}).list_topics(timeout=1)
                break
            except Exception:  # the broker is still starting
                assert compose_broker.process.poll() is None, "the compose broker exited"
        else:
            pytest.fail(f"the compose broker did not serve within {deadline} s")
        # As airflow-init does: each principal's password from its compose connection.
        with pytest.MonkeyPatch.context() as patch:
            for conn_id in names.KAFKA_CONN_PRINCIPALS:
                patch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(
                    {"conn_type": "kafka", "extra": compose_broker.client(conn_id)}))
            assert provisioning.ensure_kafka_principals_with_connections()
        yield compose_broker
    finally:
        compose_broker.stop()


@pytest.fixture(scope="module")
def topic(broker) -> str:
    name = f"compose-probe-{uuid.uuid4().hex[:8]}"
    provisioning.ensure_topic(broker.client(names.KAFKA_ADMIN_CONN_ID),
                              provisioning.TopicSpec(name, 1))
    return name


def test_the_certificate_step_keeps_the_ca_key_nowhere_and_its_secrets_private(broker):
    assert sorted(p.name for p in broker.ca_dir.iterdir()) == ["ca.pem"]
    assert (broker.ca_dir / "ca.pem").stat().st_mode & 0o777 == 0o644
    for path in broker.secrets_dir.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path
    # The broker's keystore holds its own key and only the CA's certificate.
    listing = subprocess.run(
        ["keytool", "-list", "-keystore", str(broker.secrets_dir / "kafka.keystore.p12"),
         "-storepass:file", str(broker.secrets_dir / "keystore-credentials")],
        capture_output=True, text=True, check=True).stdout
    entries = dict(re.findall(r"^(\w+), [^,]+, [^,]+, (\w+),", listing, re.M))
    assert entries == {"ca": "trustedCertEntry", "kafka": "PrivateKeyEntry"}, listing
    again = broker.make_certificates()  # a restart keeps what exists
    assert "the certificates exist" in again.stdout


def test_compose_connections_log_in_over_tls_with_their_principals_rights(broker, topic):
    relay, stream, status = (broker.client(conn_id) for conn_id in (
        names.KAFKA_CONN_ID, names.KAFKA_STREAM_CONN_ID, names.KAFKA_STATUS_CONN_ID))
    assert relay["security.protocol"] == "SASL_SSL"
    produce_probe(relay, topic)
    assert read_probe(stream, topic, f"{names.STREAM_GROUP_PREFIX}-probe") == b"probe"
    assert read_probe(status, topic, names.PIPELINE_PAGE_GROUP) == b"probe"
    kafka_refuses(stream, lambda c: produce_probe(c, topic))
    kafka_refuses(relay, lambda c: create_topic(c, f"compose-new-{uuid.uuid4().hex[:6]}"))


def test_the_compose_broker_refuses_plaintext_untrusted_and_wrong_logins(broker, topic):
    from confluent_kafka import KafkaException

    relay = broker.client(names.KAFKA_CONN_ID)
    kafka_refuses({**relay, "sasl.password": "not-the-password"}, list_topics)
    for changed in ({"security.protocol": "SASL_PLAINTEXT"},  # no TLS: no handshake
                    {"ssl.ca.location": "probe"}):  # the system's CAs do not know the stack's
        config = {**relay, **changed}
        if changed.get("ssl.ca.location"):
            config.pop("ssl.ca.location")
        with pytest.raises(KafkaException):
            list_topics(config)


def test_the_java_client_reads_with_the_stream_jobs_options_and_the_check_logs_in(
        broker, topic, stack, tmp_path):
    """What Spark's Kafka source gets (spark/stream_users.kafka_login), given the compose
    connection; and the health check's login file that compose/kafka-tls.sh writes."""
    job = load_stream_job()
    produce_probe(broker.client(names.KAFKA_CONN_ID), topic)
    options = job.kafka_login(login_environment("unused", "unused",
                                                broker.client(names.KAFKA_STREAM_CONN_ID)))
    consumer_config = tmp_path / "consumer.properties"
    consumer_config.write_text("".join(f"{key.removeprefix('kafka.')}={value}\n"
                                       for key, value in options.items()))
    consumed = _java(stack.settings, "org.apache.kafka.tools.consumer.ConsoleConsumer",
                     "--bootstrap-server", f"localhost:{broker.port}", "--topic", topic,
                     "--group", f"{names.STREAM_GROUP_PREFIX}-java-probe", "--from-beginning",
                     "--max-messages", "1", "--timeout-ms", "30000",
                     "--consumer.config", str(consumer_config))
    assert consumed.returncode == 0 and consumed.stdout.strip() == "probe", consumed.stderr[-2000:]
    check = _java(stack.settings, "org.apache.kafka.tools.BrokerApiVersionsCommand",
                  "--bootstrap-server", f"localhost:{broker.port}", "--command-config",
                  str(broker.secrets_dir / "healthcheck.properties"))
    assert check.returncode == 0 and "localhost" in check.stdout, check.stderr[-2000:]
