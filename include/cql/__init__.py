"""CQL lives in .cql files beside this module, applied in file order with the keyspace filled in."""

from __future__ import annotations

from pathlib import Path
from string import Template

from include import names

CQL_DIR = Path(__file__).parent


def split_statements(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


def statements(keyspace: str = names.CASSANDRA_KEYSPACE) -> list[str]:
    """Every statement of every `NNNN_*.cql`, in order; all are idempotent (IF NOT EXISTS, and
    grants)."""
    if not keyspace.isidentifier():
        raise ValueError(f"keyspace {keyspace!r} is not a plain CQL identifier")
    values = {"keyspace": keyspace, "stream_role": names.CASSANDRA_STREAM_ROLE,
              "reader_role": names.CASSANDRA_READER_ROLE}
    return [stmt for path in sorted(CQL_DIR.glob("*.cql"))
            for stmt in split_statements(Template(path.read_text()).substitute(values))]
