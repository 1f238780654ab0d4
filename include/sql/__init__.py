"""SQL lives in .sql files beside this module; `load("ingest/merge_users")` reads one."""

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).parent


@cache
def load(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text()
