"""Scratch objects for the hop tests: a PostgreSQL database of their own with the pipeline's
migrations, so no test reads or changes the pipeline's outbox or staging tables."""

from __future__ import annotations

import pytest

from local_stack.services import scratch_database


@pytest.fixture(scope="session")
def scratch_db(stack) -> str:
    """The name of a fresh database migrated like `userstream`; dropped after the session."""
    with scratch_database(stack, "userstream_test") as name:
        yield name
