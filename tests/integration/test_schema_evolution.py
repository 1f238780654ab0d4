"""Schema evolution governed by the registry's BACKWARD rule (on a test subject)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from include.provisioning import register_subject
from include.relay.avro import decode, encode, event_record, load_parsed_schema
from include.schema_registry import (
    USER_CREATED_SCHEMA,
    SchemaRegistryClient,
    SchemaRegistryError,
    load_schema_text,
)


def _evolved(field: dict) -> str:
    schema = json.loads(USER_CREATED_SCHEMA.read_text())
    schema["fields"].append(field)
    return json.dumps(schema, separators=(",", ":"))


def test_optional_field_registers_and_old_readers_decode_incompatible_is_refused(stack):
    client = SchemaRegistryClient(stack.settings.registry_url)
    subject = f"evolution-{uuid.uuid4().hex[:8]}-value"
    v1_id = client.register(subject, load_schema_text())
    client.set_compatibility(subject, "BACKWARD")
    assert client.get_compatibility(subject) == "BACKWARD"

    v2_text = _evolved({"name": "nickname", "type": ["null", "string"], "default": None})
    assert client.is_compatible(subject, v2_text)
    v2_id = register_subject(stack.settings.registry_url, subject, v2_text)
    assert v2_id != v1_id

    new_writer = load_parsed_schema(client.schema_by_id(v2_id))
    old_reader = load_parsed_schema(client.schema_by_id(v1_id))
    record = event_record(1, {"user_id": str(uuid.uuid4()), "first_name": "Åse"}, "h",
                          datetime.now(UTC))
    record["nickname"] = "åse"
    message = encode(v2_id, new_writer, record)
    assert decode(message, new_writer, old_reader)["first_name"] == "Åse"
    old_message = encode(v1_id, old_reader, {k: v for k, v in record.items() if k != "nickname"})
    assert decode(old_message, old_reader, new_writer)["nickname"] is None

    incompatible = _evolved({"name": "loyalty_tier", "type": "string"})  # required, no default
    assert not client.is_compatible(subject, incompatible)
    with pytest.raises(SchemaRegistryError, match="not BACKWARD compatible") as refused:
        register_subject(stack.settings.registry_url, subject, incompatible)
    assert refused.value.status == 409
