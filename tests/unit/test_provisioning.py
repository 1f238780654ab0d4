"""The topic's partitions, replication and retention come from one setting each, checked when
read."""

from __future__ import annotations

import pytest

from include import names
from include.provisioning import TopicSpec


def test_topic_spec_defaults_and_settings():
    assert TopicSpec.from_env(environ={}) == TopicSpec(names.USERS_TOPIC, 3, 1, 168)
    spec = TopicSpec.from_env("t", {"USERSTREAM_TOPIC_PARTITIONS": "6",
                                    "USERSTREAM_TOPIC_REPLICATION_FACTOR": "3",
                                    "USERSTREAM_TOPIC_RETENTION_HOURS": "48"})
    assert spec == TopicSpec("t", 6, 3, 48)
    assert spec.configs() == {"retention.ms": str(48 * 3_600_000)}
    assert TopicSpec("scratch").configs() == {}


@pytest.mark.parametrize("value", ["0", "-1", "three", "2.5"])
def test_a_bad_topic_setting_names_itself(value):
    with pytest.raises(ValueError, match="USERSTREAM_TOPIC_PARTITIONS must be a positive"):
        TopicSpec.from_env(environ={"USERSTREAM_TOPIC_PARTITIONS": value})
