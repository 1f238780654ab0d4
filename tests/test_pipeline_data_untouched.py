"""The suite leaves the pipeline's own data alone: after every other test, the real outbox, topic
and `userstream.users` hold what they held at the start plus only what the pipeline itself did
(see tests/pipeline_data.py)."""

from __future__ import annotations

import pytest

from tests.pipeline_data import foreign_changes

pytestmark = pytest.mark.pipeline_data


def test_the_suite_left_the_pipelines_data_alone(request, stack):
    # The `stack` fixture took it before the first test that could change anything.
    assert foreign_changes(stack, request.config.pipeline_snapshot) == []
