"""CQL lives in .cql files beside this module, applied in file order with the keyspace filled in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from string import Template

from include import names

CQL_DIR = Path(__file__).parent
# How many copies of each row the keyspace keeps (one per node, up to 3, on a cluster), in the
# datacenter of the nodes' snitch.
KEYSPACE_REPLICATION_SETTING = "USERSTREAM_KEYSPACE_REPLICATION_FACTOR"
DATACENTER_SETTING = "USERSTREAM_CASSANDRA_DATACENTER"


def replication(environ: Mapping[str, str] = os.environ) -> str:
    """The keyspaces' replication map: NetworkTopologyStrategy, so that LOCAL_QUORUM means a
    majority of the copies in the local datacenter."""
    factor = environ.get(KEYSPACE_REPLICATION_SETTING) or "1"
    datacenter = environ.get(DATACENTER_SETTING) or "datacenter1"
    if not factor.isdigit() or int(factor) < 1:
        raise ValueError(f"{KEYSPACE_REPLICATION_SETTING} must be a positive integer, "
                         f"got {factor!r}")
    if not datacenter.replace("-", "_").isidentifier():
        raise ValueError(f"{DATACENTER_SETTING} {datacenter!r} is not a datacenter name")
    return f"{{'class': 'NetworkTopologyStrategy', '{datacenter}': {int(factor)}}}"


def split_statements(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


def statements(keyspace: str = names.CASSANDRA_KEYSPACE,
               environ: Mapping[str, str] = os.environ) -> list[str]:
    """Every statement of every `NNNN_*.cql`, in order; all are idempotent (IF NOT EXISTS, and
    grants)."""
    if not keyspace.isidentifier():
        raise ValueError(f"keyspace {keyspace!r} is not a plain CQL identifier")
    values = {"keyspace": keyspace, "replication": replication(environ),
              "stream_role": names.CASSANDRA_STREAM_ROLE,
              "reader_role": names.CASSANDRA_READER_ROLE}
    return [stmt for path in sorted(CQL_DIR.glob("*.cql"))
            for stmt in split_statements(Template(path.read_text()).substitute(values))]
