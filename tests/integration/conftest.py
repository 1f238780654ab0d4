"""Scratch objects for the hop tests: a PostgreSQL database migrated like the pipeline's and a
Cassandra keyspace provisioned like it, so no test reads or changes the pipeline's own data."""

from __future__ import annotations

import uuid

import pytest

from include.provisioning import apply_cql
from local_stack.services import cassandra_session, scratch_database


@pytest.fixture(scope="session")
def scratch_db(stack) -> str:
    """The name of a fresh database migrated like `userstream`; dropped after the session."""
    with scratch_database(stack, "userstream_test") as name:
        yield name


@pytest.fixture(scope="module")
def cassandra(stack):
    """A scratch keyspace with the pipeline's tables, and a session; dropped after the module."""
    keyspace = f"stream_test_{uuid.uuid4().hex[:8]}"
    cluster, session = cassandra_session(stack.settings, timeout=30)
    apply_cql(session, keyspace)
    yield keyspace, session
    session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    cluster.shutdown()
