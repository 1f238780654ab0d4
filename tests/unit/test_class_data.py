"""The stream driver's class-data archive: when it is used, how it is named, and that only a
successful run's dump is kept (a damaged archive would stop the JVM at start)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from include.stream.class_data import (
    ENABLED_SETTING,
    archive_for,
    driver_class_data,
    with_driver_options,
)


def _jdk(root: Path, base_archive: bool = True) -> dict[str, str]:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "java").write_text("#!/bin/sh\n")
    if base_archive:
        (root / "lib" / "server").mkdir(parents=True)
        (root / "lib" / "server" / "classes.jsa").write_bytes(b"base")
    return {"JAVA_HOME": str(root), "PATH": ""}


def test_an_archive_per_runtime_under_the_root(tmp_path):
    env = _jdk(tmp_path / "jdk")
    archive = archive_for(tmp_path / "ckpt", "/opt/spark-submit", "a.jar,b.jar", env)
    assert archive is not None and archive.parent == tmp_path / "ckpt" / "class-data"
    assert archive == archive_for(tmp_path / "ckpt", "/opt/spark-submit", "a.jar,b.jar", env)
    assert archive != archive_for(tmp_path / "ckpt", "/opt/spark-submit", "a.jar,c.jar", env)
    other_jdk = _jdk(tmp_path / "jdk2")
    assert archive != archive_for(tmp_path / "ckpt", "/opt/spark-submit", "a.jar,b.jar",
                                  other_jdk)


def test_no_archive_without_a_base_archive_or_when_switched_off(tmp_path):
    assert archive_for(tmp_path, "spark-submit", "", _jdk(tmp_path / "bare", False)) is None
    env = {**_jdk(tmp_path / "jdk"), ENABLED_SETTING: "false"}
    assert archive_for(tmp_path, "spark-submit", "", env) is None
    assert archive_for(tmp_path, "spark-submit", "", {**env, ENABLED_SETTING: "true"})


def test_a_successful_first_run_keeps_its_dump_in_place_of_older_ones(tmp_path):
    archive = tmp_path / "class-data" / "spark-driver-new.jsa"
    archive.parent.mkdir()
    older = archive.parent / "spark-driver-old.jsa"
    older.write_bytes(b"an upgraded runtime's")
    killed = archive.parent / "spark-driver-new.jsa.0badf00d.pending"
    killed.write_bytes(b"left by a killed task")
    os.utime(killed, (time.time() - 7200, time.time() - 7200))
    running = archive.parent / "spark-driver-new.jsa.1badf00d.pending"
    running.write_bytes(b"another run dumping now")
    with driver_class_data(archive) as driver:
        assert driver.option.startswith("-XX:ArchiveClassesAtExit=")
        pending = Path(driver.option.split("=", 1)[1])
        assert pending != archive and pending.parent == archive.parent
        pending.write_bytes(b"dump")  # what the JVM writes as it exits
    assert archive.read_bytes() == b"dump"
    assert not pending.exists() and not older.exists() and not killed.exists()
    assert running.exists()
    with driver_class_data(archive) as driver:
        assert driver.option == f"-XX:SharedArchiveFile={archive}"
    assert archive.exists()


def test_a_failed_run_keeps_no_dump_and_drops_the_archive_it_used(tmp_path):
    archive = tmp_path / "a.jsa"
    with pytest.raises(RuntimeError), driver_class_data(archive) as driver:
        Path(driver.option.split("=", 1)[1]).write_bytes(b"half a dump")
        raise RuntimeError("spark-submit exited 1")
    assert list(tmp_path.iterdir()) == []
    archive.write_bytes(b"archive")
    with pytest.raises(RuntimeError), driver_class_data(archive):
        raise RuntimeError("spark-submit exited 1")
    assert not archive.exists()


def test_a_run_that_processed_no_batch_keeps_no_dump(tmp_path):
    archive = tmp_path / "a.jsa"
    with driver_class_data(archive) as driver:
        Path(driver.option.split("=", 1)[1]).write_bytes(b"a dump of start-up classes only")
        driver.keep_dump = False
    assert list(tmp_path.iterdir()) == []


def test_no_option_when_there_is_no_archive():
    with driver_class_data(None) as driver:
        assert driver.option == ""


def test_the_option_joins_the_drivers_jvm_options():
    conf = {"spark.driver.extraJavaOptions": "-XX:+UseParallelGC", "spark.x": "1"}
    merged = with_driver_options(conf, "-XX:SharedArchiveFile=/a.jsa")
    assert merged["spark.driver.extraJavaOptions"] == \
        "-XX:+UseParallelGC -XX:SharedArchiveFile=/a.jsa"
    assert conf["spark.driver.extraJavaOptions"] == "-XX:+UseParallelGC"
    assert with_driver_options({}, "-Xa") == {"spark.driver.extraJavaOptions": "-Xa"}
    assert with_driver_options(conf, "") == conf
