"""The pipeline page in the Airflow UI (served by the api-server through plugins/)."""

from __future__ import annotations

URL_PREFIX = "/userstream"
