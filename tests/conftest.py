"""Shared fixtures. Integration tests run against the local stack started by `make up`: a service
that is down fails the test (never a skip), so a green run always means the real stack was used."""

from __future__ import annotations

import os
import warnings

import pytest

from local_stack.cli import make_context
from local_stack.scratch import Inventory, remove_scratch_objects, take_inventory
from local_stack.services import Context, Unhealthy
from local_stack.settings import Settings
from local_stack.topology import active_services
from tests.pipeline_data import take_snapshot

# The node-failure suite needs the cluster topology; the rest of the suite runs on either.
collect_ignore = ["cluster"] if not Settings.from_env().clustered else []


def pytest_collection_modifyitems(config, items):
    # Lifecycle tests stop and restart the stack, so they run after everything else; then the
    # scan of what every run left behind; the check that the pipeline's data was left alone runs
    # last of all.
    items.sort(key=lambda item: (item.get_closest_marker("pipeline_data") is not None,
                                 item.get_closest_marker("after_suite") is not None,
                                 item.get_closest_marker("lifecycle") is not None))


def pause_pipeline(ctx: Context) -> None:
    """Pauses the DAGs (`make up` leaves them running) upstream first, each once nothing of
    it is in flight: the tests trigger the runs they need and expect no other. The stream
    query's DAG stays unpaused: its one run lasts as long as the query, and a paused one would
    never start the query a stream run asks for."""
    from include import names
    from local_stack.airflow_api import AirflowApi

    api = AirflowApi(ctx)
    for dag_id in names.ALL_DAG_IDS:
        if dag_id != names.STREAM_QUERY_DAG_ID and not api.is_paused(dag_id):
            api.pause_when_idle(dag_id)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def stack(request, settings: Settings) -> Context:
    """The running local stack, its pipeline paused and the pipeline's data as the first test
    that needs the stack found it; fails with what is down and how to start it."""
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
    pause_pipeline(ctx)
    request.config.pipeline_snapshot = take_snapshot(ctx)
    before = take_inventory(ctx)
    request.addfinalizer(lambda: remove_scratch_objects_or_warn(ctx, before))
    return ctx


def remove_scratch_objects_or_warn(ctx: Context, before: Inventory) -> None:
    """A sweep that fails (the stack stopped by a failed lifecycle test) is a warning in the
    summary, not an error of the last test."""
    try:
        remove_scratch_objects(ctx, before)
    except Exception as exc:
        warnings.warn(f"scratch topics and subjects were not deleted: {exc}", stacklevel=1)
