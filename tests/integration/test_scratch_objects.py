"""The session's sweep deletes the scratch topics and subjects that appeared during it, and never
the pipeline's own."""

from __future__ import annotations

import uuid

from confluent_kafka.admin import AdminClient

from include import names
from include.provisioning import TopicSpec, ensure_topic, register_subject
from include.schema_registry import SchemaRegistryClient
from local_stack.scratch import remove_scratch_objects, take_inventory
from local_stack.services import kafka_client


def test_the_sweep_deletes_what_appeared_since_and_keeps_the_pipelines_own(stack):
    s = stack.settings
    before = take_inventory(stack)
    topic = f"sweep-{uuid.uuid4().hex[:8]}"
    ensure_topic(kafka_client(s), TopicSpec(topic, partitions=1))
    subject = f"{topic}-value"
    register_subject(s.registry_url, subject)
    removed = remove_scratch_objects(stack, before)
    assert topic in removed.topics and subject in removed.subjects
    topics = AdminClient(kafka_client(s)).list_topics(timeout=10).topics
    subjects = SchemaRegistryClient(s.registry_url).subjects()
    assert topic not in topics and subject not in subjects
    assert names.USERS_TOPIC in topics and names.USERS_VALUE_SUBJECT in subjects
