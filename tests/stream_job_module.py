"""The stream job (`spark/stream_users.py`) as a module, for tests of its pure functions: it runs
under spark-submit, not as part of a package."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from include.stream.job import STREAM_JOB


def load_stream_job() -> ModuleType:
    if (loaded := sys.modules.get("stream_users")) is not None:
        return loaded
    spec = importlib.util.spec_from_file_location("stream_users", STREAM_JOB)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module
