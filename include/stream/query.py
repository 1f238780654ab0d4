"""The long-lived stream query's own records, kept in a folder beside its checkpoint (Spark owns
the checkpoint's folder): a heartbeat, a ledger of its micro-batches, and a stop request.

- `heartbeat.json`, rewritten every few seconds by the driver: its process ids, when it started,
  its counts, and whether it is running or stopped. The stream DAG reads it to know whether the
  query runs; `make stop-stream` and `make down` wait on it.
- `ledger/<batch id>.json`, one per micro-batch, written before Spark commits the batch (a batch
  run again after a crash rewrites its entry): the offset range it read per partition and what
  became of each message (rows written, dead letters, superseded). The landing check balances
  the books of the batches that read the relay's messages, from these entries.
- `alerted/<batch id>`: the batch's dead letters were alerted. Two stream runs whose relay
  offsets share a micro-batch both find its dead letters; the first to create this file alerts.
- `stop`: a request to end between two micro-batches; the driver removes it when it has stopped.
- `lock`: held by the running driver, so a second query on the same checkpoint refuses to start.

Standard library only: the Spark job imports this module too.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

QUERY_DIR_SUFFIX = ".query"
# A driver writes its heartbeat every HEARTBEAT_EVERY_S; one older than HEARTBEAT_STALE_S means
# the driver is gone or hung.
HEARTBEAT_EVERY_S = 5.0
HEARTBEAT_STALE_S = 60.0
# Ledger entries kept: Spark keeps the last 100 batches of a checkpoint; the landing check needs
# the batches since the relay runs that trigger it, minutes at most.
LEDGER_KEEP = 5000
# The supervisor's task writes STARTING before it submits the query: a query that takes longer
# than STARTING_GRACE_S to write its first heartbeat is not coming.
STARTING, RUNNING, STOPPED = "starting", "running", "stopped"
STARTING_GRACE_S = 300.0
STOP_REQUESTED = "stop requested"


def query_dir(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.name + QUERY_DIR_SUFFIX)


def heartbeat_path(folder: Path) -> Path:
    return folder / "heartbeat.json"


def stop_path(folder: Path) -> Path:
    return folder / "stop"


def ledger_dir(folder: Path) -> Path:
    return folder / "ledger"


def alerted_dir(folder: Path) -> Path:
    return folder / "alerted"


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Replaces `path` atomically: a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(data, sort_keys=True))
    partial.replace(path)


def read_heartbeat(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads(heartbeat_path(folder).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def query_health(heartbeat: Mapping[str, Any] | None, now: float | None = None,
                 stale_after_s: float = HEARTBEAT_STALE_S) -> tuple[bool, str]:
    """Whether a query is running, from its heartbeat, and what the heartbeat says."""
    now = time.time() if now is None else now
    if heartbeat is None:
        return False, "no query has run (no heartbeat)"
    age = now - float(heartbeat["written_at"])
    if heartbeat.get("state") == STARTING:
        if age <= STARTING_GRACE_S:
            return True, f"the query is starting (submitted {age:.0f}s ago)"
        return False, f"the query was submitted {age:.0f}s ago and never ran"
    if heartbeat.get("state") != RUNNING:
        return False, f"the query stopped {age:.0f}s ago: {heartbeat.get('reason', '?')}"
    if age > stale_after_s:
        return False, (f"the query's heartbeat is {age:.0f}s old (driver pid "
                       f"{heartbeat.get('driver_pid')} gone or hung)")
    return True, (f"the query runs (driver pid {heartbeat.get('driver_pid')}, up "
                  f"{now - float(heartbeat['started_at']):.0f}s, {heartbeat.get('batches', 0)} "
                  f"batch(es), {heartbeat.get('messages', 0):,} message(s))")


def stopped_on_request(heartbeat: Mapping[str, Any] | None) -> bool:
    return bool(heartbeat) and heartbeat.get("state") == STOPPED \
        and heartbeat.get("reason") == STOP_REQUESTED


def request_stop(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stop_path(folder).write_text(str(time.time()))


def write_ledger_entry(folder: Path, entry: Mapping[str, Any]) -> None:
    batch_id = int(entry["batch_id"])
    ledger = ledger_dir(folder)
    write_json(ledger / f"{batch_id:012d}.json", entry)
    if batch_id >= LEDGER_KEEP and batch_id % 100 == 0:
        for old in [*ledger.glob("*.json"), *alerted_dir(folder).glob("*")]:
            if old.stem.isdigit() and int(old.stem) <= batch_id - LEDGER_KEEP:
                old.unlink(missing_ok=True)


def read_ledger(folder: Path) -> list[dict[str, Any]]:
    """The ledger's entries, oldest batch first."""
    entries = []
    for path in sorted(ledger_dir(folder).glob("*.json")):
        try:
            entries.append(json.loads(path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            continue  # pruned or replaced while read
    return entries


def claim_dead_letter_alerts(folder: Path,
                             entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The entries with dead letters that no landing check has alerted yet, each now claimed by
    the caller. A claim is a file created exclusively, so of two concurrent checks one wins."""
    claimed = []
    with_dead_letters = [entry for entry in entries if entry.get("dead_letters")]
    if not with_dead_letters:  # the usual run: no folder touched
        return claimed
    marks = alerted_dir(folder)
    marks.mkdir(parents=True, exist_ok=True)
    for entry in with_dead_letters:
        try:
            os.close(os.open(marks / f"{int(entry['batch_id']):012d}",
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            continue
        claimed.append(dict(entry))
    return claimed


def release_dead_letter_alerts(folder: Path, entries: Iterable[Mapping[str, Any]]) -> None:
    """Gives claims back (their alert could not be sent), for the next landing check."""
    for entry in entries:
        (alerted_dir(folder) / f"{int(entry['batch_id']):012d}").unlink(missing_ok=True)


def offset_ranges(first: Mapping[int, int], last: Mapping[int, int]) -> dict[int, tuple[int, int]]:
    """Per partition, the inclusive offset range from `first` to `last` (a partition with a last
    offset but no first one starts at 0)."""
    return {int(p): (int(first.get(p, 0)), int(o)) for p, o in last.items()}


def entries_reading(entries: Iterable[Mapping[str, Any]],
                    ranges: Mapping[int, tuple[int, int]]) -> list[dict[str, Any]]:
    """The ledger entries whose batch read any offset in `ranges` (partition: inclusive range)."""
    found = []
    for entry in entries:
        for partition, (first, last) in entry.get("offsets", {}).items():
            wanted = ranges.get(int(partition))
            if wanted and first <= wanted[1] and last >= wanted[0]:
                found.append(dict(entry))
                break
    return found


def unbalanced_entries(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Entries whose messages are not each a row written, a dead letter or superseded."""
    return [dict(e) for e in entries
            if e["messages"] != e["rows_written"] + e["dead_letters"] + e["superseded"]]


def ledger_totals(entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The summed counts of `entries`, in the shape of a per-run report."""
    entries = list(entries)
    totals: dict[str, Any] = {key: sum(e[key] for e in entries) for key in
                              ("messages", "rows_written", "dead_letters", "superseded")}
    end: dict[str, int] = {}
    for entry in entries:
        for partition, (_, last) in entry.get("offsets", {}).items():
            key = f"{entry['topic']}:{partition}"
            end[key] = max(last, end.get(key, -1))
    totals |= {"batches": len(entries), "batch_ids": [e["batch_id"] for e in entries],
               "end_offsets": end, "sample_user_ids": [],
               "dead_letter_examples": [x for e in entries
                                        for x in e.get("dead_letter_examples", [])][:10]}
    return totals
