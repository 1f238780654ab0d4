"""Installs what local mode needs, idempotently: a stamp per step records the hash of its inputs,
so a warm `up` skips every step whose inputs did not change."""

from __future__ import annotations

import compileall
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from local_stack.settings import PROJECT_ROOT, Settings

SERVICES_POM = PROJECT_ROOT / "local_stack" / "maven" / "pom.xml"
SPARK_POM = PROJECT_ROOT / "spark" / "pom.xml"
SPARK_REQUIREMENTS = PROJECT_ROOT / "spark" / "requirements.txt"
# Bumped when the Spark virtualenv's layout changes, so existing installs are rebuilt once.
SPARK_RUNTIME_LAYOUT = "bytecode"
# The project's own Python: every Airflow task and DAG parse imports it in a fresh process.
PROJECT_SOURCE_DIRS = ("include", "airflow_home/dags", "plugins", "spark", "local_stack", "ops")
APT_PACKAGES = {
    "postgres": ["postgresql"],
    "java": ["openjdk-17-jdk-headless"],
    "mvn": ["maven"],
    "redis": ["redis-server"],  # the cluster topology's Celery broker
}


class InstallError(RuntimeError):
    pass


def _log(message: str) -> None:
    print(f"[install] {message}", flush=True)


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                h.update(str(file.relative_to(PROJECT_ROOT)).encode())
                h.update(file.read_bytes())
    return h.hexdigest()


def _stamp_ok(stamp: Path, digest: str) -> bool:
    return stamp.exists() and stamp.read_text().strip() == digest


def postgres_bin_dir() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                        else 0)
    return candidates[-1].parent if candidates else None


def _missing_system_packages(settings: Settings) -> list[str]:
    missing = []
    if settings.clustered and shutil.which("redis-server") is None:
        missing += APT_PACKAGES["redis"]
    if postgres_bin_dir() is None:
        missing += APT_PACKAGES["postgres"]
    java = shutil.which("java")
    if java is None or _java_major(java) < 17:
        missing += APT_PACKAGES["java"]
    if shutil.which("mvn") is None:
        missing += APT_PACKAGES["mvn"]
    return missing


def _java_major(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    for token in out.split():
        token = token.strip('"')
        if token[:2].isdigit():
            return int(token.split(".")[0])
    return 0


def ensure_system_packages(settings: Settings) -> None:
    missing = _missing_system_packages(settings)
    if not missing:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if os.geteuid() != 0:
        raise InstallError(
            "missing system packages; run as root:\n  apt-get update && " + " ".join(command))
    _log(f"apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(command, check=True, env=env)


def _maven(pom: Path, state: Path, what: str) -> None:
    _log(f"resolving {what} with Maven ({pom.relative_to(PROJECT_ROOT)})")
    result = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(pom), "package", f"-Duserstream.state={state}"],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise InstallError(f"Maven failed for {what}:\n{(result.stdout + result.stderr)[-3000:]}")


def ensure_jvm_services(settings: Settings) -> None:
    stamp = settings.jvm_dir / ".stamp"
    digest = _digest(SERVICES_POM.parent)
    if not _stamp_ok(stamp, digest):
        if settings.jvm_dir.exists():
            shutil.rmtree(settings.jvm_dir)
        _maven(SERVICES_POM, settings.installs, "Kafka, Cassandra and Apicurio Registry")
        _unpack_registry(settings)
        stamp.write_text(digest)


def _unpack_registry(settings: Settings) -> None:
    registry = settings.jvm_dir / "registry"
    archives = list(registry.glob("apicurio-registry-app-*-all.tar.gz"))
    if len(archives) != 1:
        raise InstallError(f"expected one Apicurio distribution in {registry}, found {archives}")
    with tarfile.open(archives[0]) as tar:
        tar.extractall(registry / "app", filter="data")
    archives[0].unlink()


def registry_runner(settings: Settings) -> Path:
    jars = list((settings.jvm_dir / "registry" / "app").glob("apicurio-registry-app-*-runner.jar"))
    if not jars:
        raise InstallError("Apicurio Registry is not installed; run `make up`")
    return jars[0]


def ensure_spark_runtime(settings: Settings) -> None:
    stamp = settings.spark_venv / ".stamp"
    digest = f"{_digest(SPARK_REQUIREMENTS)}:{SPARK_RUNTIME_LAYOUT}"
    if not _stamp_ok(stamp, digest):
        _log("creating the Spark runtime virtualenv (full pyspark, spark-submit)")
        if settings.spark_venv.exists():
            shutil.rmtree(settings.spark_venv)
        # No cache: pyspark is an sdist, and every install built it again into the cache (about
        # 1.3 GB a time); on a machine with little disk that filled it.
        uv = shutil.which("uv")
        if uv:
            subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(settings.spark_venv)],
                           check=True)
            subprocess.run([uv, "pip", "install", "-q", "--no-cache", "--compile-bytecode",
                            "--python", str(settings.spark_venv / "bin" / "python"),
                            "-r", str(SPARK_REQUIREMENTS)], check=True)
        else:
            subprocess.run([sys.executable, "-m", "venv", str(settings.spark_venv)], check=True)
            subprocess.run([str(settings.spark_venv / "bin" / "pip"), "install", "-q",
                            "--no-cache-dir", "-r", str(SPARK_REQUIREMENTS)], check=True)
        stamp.write_text(digest)
    jar_stamp = settings.spark_jars_dir.parent / ".stamp"
    jar_digest = _digest(SPARK_POM)
    if not _stamp_ok(jar_stamp, jar_digest):
        if settings.spark_jars_dir.exists():
            shutil.rmtree(settings.spark_jars_dir)
        _maven(SPARK_POM, settings.installs, "the Spark job's jars (Kafka, Avro, Cassandra)")
        jar_stamp.write_text(jar_digest)


def compile_project_bytecode(root: Path = PROJECT_ROOT) -> None:
    """Writes the project's bytecode next to its sources (git-ignored). Each Airflow task runs in
    a fresh process that imports its DAG file and `include`; where PYTHONDONTWRITEBYTECODE is
    set, Python would otherwise compile them from source in every one of those processes.
    Stale files are harmless: Python checks the source's time and size before using one."""
    for folder in PROJECT_SOURCE_DIRS:
        if (root / folder).is_dir() and not compileall.compile_dir(root / folder, quiet=1):
            raise InstallError(f"Python files under {root / folder} do not compile (see above)")


def ensure_all(settings: Settings) -> None:
    ensure_system_packages(settings)
    ensure_jvm_services(settings)
    ensure_spark_runtime(settings)
    compile_project_bytecode()
