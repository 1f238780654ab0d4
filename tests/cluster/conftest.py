"""The cluster suite runs against `make up TOPOLOGY=cluster` only (tests/conftest.py leaves it
out of the `single` run): anything else fails, never skips."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def cluster_topology(settings):
    if not settings.clustered:
        pytest.fail("the cluster suite needs the cluster topology: `make up TOPOLOGY=cluster`, "
                    "then USERSTREAM_TOPOLOGY=cluster pytest tests/cluster")
