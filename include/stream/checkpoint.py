"""What the stream job's checkpoint says it has committed, and how far that is from the offsets
the relay reported (the landing check's completeness test, the status screen's lag)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from include import names


def committed_offsets(checkpoint: Path, topic: str = names.USERS_TOPIC) -> dict[int, int]:
    """The next offset per partition the stream job will read: the source offsets of the last
    micro-batch Spark committed (`commits/N`, then `offsets/N`, whose last line is the Kafka
    source's JSON). Empty when the job never committed a batch."""
    commits = checkpoint / "commits"
    batches = [int(p.name) for p in commits.iterdir() if p.name.isdigit()] \
        if commits.is_dir() else []
    if not batches:
        return {}
    lines = (checkpoint / "offsets" / str(max(batches))).read_text().strip().splitlines()
    source = json.loads(lines[-1])
    return {int(partition): int(offset) for partition, offset in source.get(topic, {}).items()}


def shortfall(last_offsets: Mapping[int, int], committed: Mapping[int, int]) -> dict[int, int]:
    """Per partition, how many messages up to `last_offsets` (the last offset written, as the
    relay reports it) the committed offsets (the next offset to read) have not reached yet."""
    short = {p: last + 1 - committed.get(p, 0) for p, last in last_offsets.items()}
    return {p: n for p, n in sorted(short.items()) if n > 0}
