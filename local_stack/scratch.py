"""Scratch Kafka topics and registry subjects, as tests, their DAG runs and the benchmarks create
them: deleted when done, so a developer's stack does not collect a few dozen per test session.
The pipeline's own topic and subject are never touched."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import requests
from confluent_kafka.admin import AdminClient

from include import names
from include.schema_registry import SchemaRegistryClient
from local_stack.services import Context, kafka_client

log = logging.getLogger(__name__)
PIPELINE_OWN = frozenset({names.USERS_TOPIC, names.USERS_VALUE_SUBJECT})


@dataclass(frozen=True)
class Inventory:
    topics: frozenset[str]
    subjects: frozenset[str]


def take_inventory(ctx: Context) -> Inventory:
    admin = AdminClient(kafka_client(ctx.settings))
    return Inventory(frozenset(admin.list_topics(timeout=10).topics),
                     frozenset(SchemaRegistryClient(ctx.settings.registry_url).subjects()))


def new_scratch_objects(before: Inventory, now: Inventory) -> Inventory:
    """What appeared since `before`, less the pipeline's own and Kafka's internal topics."""
    return Inventory(
        frozenset(t for t in now.topics - before.topics
                  if t not in PIPELINE_OWN and not t.startswith("_")),
        frozenset(s for s in now.subjects - before.subjects if s not in PIPELINE_OWN))


def delete_subject(registry_url: str, subject: str) -> None:
    """Soft-deletes the subject's versions, then deletes it for good (the registry's API)."""
    for suffix in ("", "?permanent=true"):
        response = requests.delete(f"{registry_url}/subjects/{subject}{suffix}", timeout=30)
        if response.status_code != 404:
            response.raise_for_status()


def delete_scratch(ctx: Context, topics: Iterable[str], subjects: Iterable[str] = ()) -> None:
    """Deletes scratch topics and subjects; refuses the pipeline's own."""
    topics, subjects = sorted(topics), sorted(subjects)
    if own := PIPELINE_OWN.intersection([*topics, *subjects]):
        raise ValueError(f"not a scratch object: {sorted(own)}")
    if topics:
        admin = AdminClient(kafka_client(ctx.settings))  # alive until its futures are done
        futures = admin.delete_topics(topics, operation_timeout=60)
        for future in futures.values():
            future.result(90)
    for subject in subjects:
        delete_subject(ctx.settings.registry_url, subject)


def remove_scratch_objects(ctx: Context, before: Inventory) -> Inventory:
    """Deletes the topics and subjects that appeared since `before`; returns them."""
    scratch = new_scratch_objects(before, take_inventory(ctx))
    delete_scratch(ctx, scratch.topics, scratch.subjects)
    log.info("deleted %d scratch topic(s) and %d subject(s)", len(scratch.topics),
             len(scratch.subjects))
    return scratch
