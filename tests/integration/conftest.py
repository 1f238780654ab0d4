"""Scratch objects for the hop tests: a PostgreSQL database of their own with the pipeline's
migrations, so no test reads or changes the pipeline's outbox or staging tables."""

from __future__ import annotations

import uuid

import pytest

from include.provisioning import migrate_postgres
from local_stack.services import pg_connect


@pytest.fixture(scope="session")
def scratch_db(stack) -> str:
    """The name of a fresh database migrated like `userstream`; dropped after the session."""
    name = f"userstream_test_{uuid.uuid4().hex[:8]}"
    with pg_connect(stack, "postgres") as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    with pg_connect(stack, name) as conn:
        migrate_postgres(conn)
    yield name
    with pg_connect(stack, "postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
