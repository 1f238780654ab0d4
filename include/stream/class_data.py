"""Class-data sharing for the stream job's driver JVM.

Each stream run starts a JVM that loads and verifies thousands of classes of Spark and its
connectors before the first micro-batch. The first successful run dumps them into an archive
(`-XX:ArchiveClassesAtExit`); later runs map it (`-XX:SharedArchiveFile`), which took 1.3-1.8 s
instead of 3.1-3.8 s to the first batch and about 4 s less CPU in it (bench/stream_benchmark).

The archive is named after what it depends on (spark-submit, the jars, the java binary), so an
upgrade starts a new one, which replaces the old; the JVM also ignores an archive that does not
match. A truncated archive would crash the JVM at start, so a dump is written under a temporary
name and kept only when its run succeeded and processed a batch, and an archive whose run failed
is dropped and rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ENABLED_SETTING = "USERSTREAM_SPARK_CLASS_DATA_SHARING"
ARCHIVE_DIR_NAME = "class-data"
ARCHIVE_PREFIX = "spark-driver-"


def java_binary(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The java spark-submit runs: $JAVA_HOME/bin/java, else the one on PATH."""
    if java_home := environ.get("JAVA_HOME"):
        return Path(java_home) / "bin" / "java"
    found = shutil.which("java", path=environ.get("PATH"))
    return Path(found) if found else None


def has_base_archive(java: Path) -> bool:
    """A dynamic archive extends the JDK's own; without it the JVM refuses to start."""
    home = java.resolve().parent.parent
    return (home / "lib" / "server" / "classes.jsa").is_file()


def _identity(path: Path) -> str:
    resolved = path.resolve()
    stat = resolved.stat() if resolved.exists() else None
    return f"{resolved}:{stat.st_size if stat else 0}:{int(stat.st_mtime) if stat else 0}"


def archive_path(root: Path, spark_submit: str, jars: str, java: Path) -> Path:
    submit = Path(shutil.which(spark_submit) or spark_submit)
    key = "\n".join([_identity(submit), jars, _identity(java)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return root / ARCHIVE_DIR_NAME / f"{ARCHIVE_PREFIX}{digest}.jsa"


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(ENABLED_SETTING, "true").strip().lower() not in {"0", "false", "no", "off"}


def archive_for(root: Path, spark_submit: str, jars: str,
                environ: Mapping[str, str] = os.environ) -> Path | None:
    """The archive this runtime's driver uses, or None when sharing is off or unsupported."""
    java = java_binary(environ)
    if not enabled(environ) or java is None or not has_base_archive(java):
        return None
    return archive_path(root, spark_submit, jars, java)


@dataclass
class DriverRun:
    """The JVM option for one driver run; `keep_dump` False discards a dump the run makes (a run
    that processed no batch loaded too few classes to be worth archiving)."""

    option: str
    keep_dump: bool = True


@contextmanager
def driver_class_data(archive: Path | None) -> Iterator[DriverRun]:
    """Yields the JVM option for a driver run that happens inside the block: map the archive, or
    dump one when there is none yet. Leaving the block normally means the run succeeded."""
    if archive is None:
        yield DriverRun("")
        return
    if archive.is_file():
        try:
            yield DriverRun(f"-XX:SharedArchiveFile={archive}")
        except BaseException:
            # Possibly the archive's fault (a damaged one stops the JVM at start): rebuild it.
            archive.unlink(missing_ok=True)
            raise
        return
    archive.parent.mkdir(parents=True, exist_ok=True)
    pending = archive.with_name(f"{archive.name}.{uuid.uuid4().hex[:8]}.pending")
    try:
        run = DriverRun(f"-XX:ArchiveClassesAtExit={pending}")
        yield run
        if run.keep_dump and pending.is_file():
            os.replace(pending, archive)
            _remove_leftovers(archive)
    finally:
        pending.unlink(missing_ok=True)


def _remove_leftovers(archive: Path, pending_age_s: float = 3600) -> None:
    """An archive of about 160 MB per runtime: the one just made replaces older ones, and dumps
    left by a task process that was killed outright (no cleanup ran) go after an hour."""
    now = time.time()
    for other in archive.parent.iterdir():
        if other == archive or not other.name.startswith(ARCHIVE_PREFIX):
            continue
        try:
            stale = other.suffix == ".jsa" or now - other.stat().st_mtime > pending_age_s
            if stale:
                other.unlink()
        except FileNotFoundError:
            pass


def with_driver_options(conf: Mapping[str, str], option: str) -> dict[str, str]:
    """`conf` with `option` added to the driver's JVM options."""
    key = "spark.driver.extraJavaOptions"
    merged = dict(conf)
    if option:
        merged[key] = f"{merged.get(key, '')} {option}".strip()
    return merged
