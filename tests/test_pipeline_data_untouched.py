"""The suite leaves the pipeline's own data alone: after every other test, the real outbox, topic
and `userstream.users` hold what they held at the start plus only what the pipeline itself did
(see tests/pipeline_data.py)."""

from __future__ import annotations

import pytest

from tests.pipeline_data import foreign_changes

pytestmark = pytest.mark.pipeline_data


def test_the_suite_left_the_pipelines_data_alone(request, stack):
    before = request.config.pipeline_snapshot
    assert before is not None, (
        "no snapshot of the pipeline's data was taken when the session started: "
        f"{getattr(request.config, 'pipeline_snapshot_error', '?')}")
    assert foreign_changes(stack, before) == []
