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
    """Every statement of every `NNNN_*.cql`, in order; all are idempotent (IF NOT EXISTS)."""
    if not keyspace.isidentifier():
        raise ValueError(f"keyspace {keyspace!r} is not a plain CQL identifier")
    return [stmt for path in sorted(CQL_DIR.glob("*.cql"))
            for stmt in split_statements(Template(path.read_text()).substitute(keyspace=keyspace))]


def apply(session, keyspace: str = names.CASSANDRA_KEYSPACE, timeout_s: float = 60) -> int:
    """Applies every statement through a cassandra-driver session; returns how many ran."""
    applied = 0
    for stmt in statements(keyspace):
        session.execute(stmt, timeout=timeout_s)
        applied += 1
    return applied


def apply_with_hook(conn_id: str = names.CASSANDRA_CONN_ID) -> int:
    """apply() through the Cassandra provider's hook (the DAG and docker compose's init). The
    session is opened without a keyspace: the connection's keyspace may not exist yet."""
    from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook

    hook = CassandraHook(cassandra_conn_id=conn_id)
    try:
        return apply(hook.get_cluster().connect())
    finally:
        hook.shutdown_cluster()
