"""The topic's partitions, replication and retention come from one setting each, checked when
read."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include import names
from include.provisioning import TopicSpec


def test_topic_spec_defaults_and_settings():
    assert TopicSpec.from_env(environ={}) == TopicSpec(names.USERS_TOPIC, 3, 1, 168, 1)
    spec = TopicSpec.from_env("t", {"USERSTREAM_TOPIC_PARTITIONS": "6",
                                    "USERSTREAM_TOPIC_REPLICATION_FACTOR": "3",
                                    "USERSTREAM_TOPIC_RETENTION_HOURS": "48",
                                    "USERSTREAM_TOPIC_MIN_INSYNC_REPLICAS": "2"})
    assert spec == TopicSpec("t", 6, 3, 48, 2)
    assert spec.configs() == {"retention.ms": str(48 * 3_600_000), "min.insync.replicas": "2"}
    assert TopicSpec("scratch").configs() == {}


def test_a_topic_that_could_never_acknowledge_a_write_is_refused():
    with pytest.raises(ValueError, match=r"USERSTREAM_TOPIC_MIN_INSYNC_REPLICAS \(3\) exceeds"):
        TopicSpec.from_env(environ={"USERSTREAM_TOPIC_REPLICATION_FACTOR": "2",
                                    "USERSTREAM_TOPIC_MIN_INSYNC_REPLICAS": "3"})


def test_the_keyspace_replication_follows_its_setting():
    from include import cql

    assert cql.replication({}) == "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1}"
    (keyspace, *_) = cql.statements("ks", {"USERSTREAM_KEYSPACE_REPLICATION_FACTOR": "3"})
    assert "{'class': 'NetworkTopologyStrategy', 'datacenter1': 3}" in keyspace
    for bad in ({"USERSTREAM_KEYSPACE_REPLICATION_FACTOR": "0"},
                {"USERSTREAM_CASSANDRA_DATACENTER": "dc1'} ; DROP"}):
        with pytest.raises(ValueError):
            cql.replication(bad)


@pytest.mark.parametrize("value", ["0", "-1", "three", "2.5"])
def test_a_bad_topic_setting_names_itself(value):
    with pytest.raises(ValueError, match="USERSTREAM_TOPIC_PARTITIONS must be a positive"):
        TopicSpec.from_env(environ={"USERSTREAM_TOPIC_PARTITIONS": value})


def _verify_scram(verifier: str, password: str) -> bool:
    """A server's check of a password against a stored SCRAM-SHA-256 verifier (RFC 5802/7677),
    written out independently of the code under test."""
    import base64
    import hashlib
    import hmac

    scheme, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(":"))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt),
                                 int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return (scheme == "SCRAM-SHA-256"
            and hashlib.sha256(client_key).digest() == stored_key
            and hmac.new(salted, b"Server Key", hashlib.sha256).digest() == server_key)


@given(password=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126),
                        min_size=1, max_size=64),
       other=st.text(min_size=1, max_size=64))
@settings(max_examples=40, deadline=None)
def test_a_scram_verifier_accepts_its_password_only(password, other):
    from include.provisioning import scram_verifier

    verifier = scram_verifier(password, iterations=64)
    assert len(password) < 12 or password not in verifier
    assert _verify_scram(verifier, password)
    if other != password:
        assert not _verify_scram(verifier, other)
    assert scram_verifier(password, iterations=64) != verifier  # a new salt every time


def test_the_grants_name_every_role_and_leave_no_placeholder():
    from include import cql
    from include.provisioning import grant_pipeline_roles

    class Recorder:
        def __init__(self):
            self.statements: list[str] = []

        def execute(self, statement):
            self.statements.append(statement)

    recorder = Recorder()
    grant_pipeline_roles(recorder)
    (script,) = recorder.statements
    assert "${" not in script
    for role in names.POSTGRES_PIPELINE_ROLES:
        assert role in script
    grants = [s for s in cql.statements("scratch_ks") if s.startswith("GRANT")]
    assert grants and all("${" not in s and "scratch_ks" in s for s in grants)
    assert {names.CASSANDRA_STREAM_ROLE, names.CASSANDRA_READER_ROLE} == {
        s.rsplit(" TO ", 1)[1] for s in grants}


def test_a_grant_is_looked_up_before_it_is_sent_and_nothing_else_is():
    from include.provisioning import already_granted

    class Listing:
        def __init__(self, rows):
            self.rows, self.sent = rows, []

        def execute(self, statement, timeout=None):
            self.sent.append(statement)
            return iter(self.rows)

    held, lacking = Listing([("userstream_stream", "MODIFY")]), Listing([])
    grant = "GRANT MODIFY ON TABLE ks.users TO userstream_stream"
    assert already_granted(held, grant)
    assert held.sent == ["LIST MODIFY ON TABLE ks.users OF userstream_stream"]
    assert not already_granted(lacking, "GRANT SELECT ON KEYSPACE ks TO userstream_reader")
    assert lacking.sent == ["LIST SELECT ON KEYSPACE ks OF userstream_reader"]
    untouched = Listing([("x",)])
    assert not already_granted(untouched, "CREATE TABLE IF NOT EXISTS ks.users (id int)")
    assert untouched.sent == []
