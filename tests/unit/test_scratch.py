"""What the test session's sweep of scratch topics and subjects selects (local_stack/scratch.py)."""

from __future__ import annotations

from include import names
from local_stack.scratch import Inventory, new_scratch_objects


def test_the_sweep_takes_only_what_appeared_and_never_the_pipelines_own():
    before = Inventory(frozenset({"old-topic"}), frozenset({"old-topic-value"}))
    now = Inventory(frozenset({"old-topic", "new-topic", names.USERS_TOPIC, "__consumer_offsets"}),
                    frozenset({"old-topic-value", "new-topic-value", names.USERS_VALUE_SUBJECT}))
    assert new_scratch_objects(before, now) == Inventory(frozenset({"new-topic"}),
                                                         frozenset({"new-topic-value"}))
