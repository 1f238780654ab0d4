"""A small client for the Confluent Schema Registry REST API (served here by Apicurio Registry's
Confluent-compatible endpoint). Used by the relay, the bootstrap and the tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

SCHEMAS_DIR = Path(__file__).parent / "schemas"
USER_CREATED_SCHEMA = SCHEMAS_DIR / "user_created.avsc"
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class SchemaRegistryError(RuntimeError):
    def __init__(self, message: str, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body


def load_schema_text(path: Path = USER_CREATED_SCHEMA) -> str:
    """The schema as compact canonical JSON text (what the registry stores and compares)."""
    return json.dumps(json.loads(path.read_text()), separators=(",", ":"))


@dataclass
class SchemaRegistryClient:
    base_url: str
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self._session = requests.Session()
        self._session.headers.update({"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE})

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = self._session.request(method, url, json=payload, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise SchemaRegistryError(f"schema registry unreachable at {url}: {exc}") from exc
        if response.status_code >= 400:
            raise SchemaRegistryError(
                f"schema registry {method} {path} -> HTTP {response.status_code}: "
                f"{response.text[:500]}", response.status_code, response.text)
        return response.json() if response.content else None

    def subjects(self) -> list[str]:
        return self._call("GET", "/subjects")

    def set_compatibility(self, subject: str, level: str) -> None:
        self._call("PUT", f"/config/{subject}", {"compatibility": level})

    def get_compatibility(self, subject: str) -> str:
        return self._call("GET", f"/config/{subject}")["compatibilityLevel"]

    def register(self, subject: str, schema_text: str) -> int:
        """Registers (or finds) the schema under subject; returns its global id. Idempotent."""
        body = self._call("POST", f"/subjects/{subject}/versions",
                          {"schema": schema_text, "schemaType": "AVRO"})
        return int(body["id"])

    def is_compatible(self, subject: str, schema_text: str) -> bool:
        body = self._call("POST", f"/compatibility/subjects/{subject}/versions/latest",
                          {"schema": schema_text, "schemaType": "AVRO"})
        return bool(body["is_compatible"])

    def schema_by_id(self, schema_id: int) -> str:
        return self._call("GET", f"/schemas/ids/{schema_id}")["schema"]

    def latest(self, subject: str) -> dict[str, Any]:
        return self._call("GET", f"/subjects/{subject}/versions/latest")
