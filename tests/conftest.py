"""Shared fixtures. Integration tests run against the local stack started by `make up`: a service
that is down fails the test (never a skip), so a green run always means the real stack was used."""

from __future__ import annotations

import os

import pytest

from local_stack.cli import make_context
from local_stack.services import Context, Unhealthy, active_services
from local_stack.settings import Settings


def pytest_collection_modifyitems(config, items):
    # Lifecycle tests stop and restart the stack, so they run after everything else; the check
    # that the pipeline's data was left alone runs last of all.
    items.sort(key=lambda item: (item.get_closest_marker("pipeline_data") is not None,
                                 item.get_closest_marker("lifecycle") is not None))


def pytest_sessionstart(session):
    """The pipeline's data as the session found it (None when the stack is not up)."""
    from tests.pipeline_data import take_snapshot

    try:
        ctx, _ = make_context(Settings.from_env())
        session.config.pipeline_snapshot = take_snapshot(ctx)
    except Exception as exc:  # the stack is down: unit tests still run; the check reports it
        session.config.pipeline_snapshot = None
        session.config.pipeline_snapshot_error = f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Context:
    """The running local stack; fails with what is down and how to start it."""
    ctx, _ = make_context(settings)
    down = []
    for service in active_services(settings):
        try:
            service.health(ctx)
        except (Unhealthy, Exception) as exc:
            down.append(f"{service.name}: {exc}")
    if down:
        pytest.fail("local stack is not healthy (start it with `make up`):\n  " + "\n  ".join(down))
    # Clients in the tests (Airflow hooks included) see the same connections as the services.
    os.environ.update({k: v for k, v in ctx.env.items() if k.startswith(("AIRFLOW", "USERSTREAM"))})
    return ctx
