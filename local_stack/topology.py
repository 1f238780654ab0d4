"""Which services a configuration runs: `single` (one process per service) or `cluster` (three
Kafka brokers, three Cassandra nodes, Spark standalone with two workers, Redis and two Airflow
Celery workers). The topology changes only this list, the settings and the connections; no DAG
or `include/` module knows which one runs."""

from __future__ import annotations

from local_stack.cluster_services import airflow_worker_services, cluster_services
from local_stack.services import OFFLINE_SOURCE_ONLY, Service, core_services
from local_stack.settings import Settings


def all_services(settings: Settings) -> list[Service]:
    """Every service of the topology, in start order (the Airflow ones last)."""
    services = core_services(settings)
    if not settings.clustered:
        return services
    first_airflow = next(i for i, s in enumerate(services) if s.name.startswith("airflow-"))
    return [*services[:first_airflow], *cluster_services(settings), *services[first_airflow:],
            *airflow_worker_services(settings)]


def active_services(settings: Settings) -> tuple[Service, ...]:
    """The services this configuration runs: the local randomuser API only for the local source."""
    return tuple(s for s in all_services(settings)
                 if settings.source == "local" or s.name not in OFFLINE_SOURCE_ONLY)


def by_name(name: str, settings: Settings | None = None) -> Service:
    for service in all_services(settings or Settings.from_env()):
        if service.name == name:
            return service
    raise KeyError(name)
