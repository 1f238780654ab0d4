"""From one randomuser.me API result to one staging row. Pure and typed.

The stable identity of a user is `login.uuid` (never a generated id), so re-ingesting a window
finds the same rows. Postcodes stay text exactly as given (the API sends ints for some countries,
strings for others); coordinates arrive as strings and become numbers; `id.value` may be null.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple


class InvalidUser(ValueError):
    """A result that cannot be normalised; the message is the reason stored with the reject."""


class StagedUser(NamedTuple):
    """One staging row, in `staging.users` column order (a tuple, so COPY takes it as is)."""

    user_id: str
    gender: str | None
    title: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    username: str | None
    phone: str | None
    cell: str | None
    street_number: int | None
    street_name: str | None
    city: str | None
    state: str | None
    country: str | None
    postcode: str | None
    latitude: float | None
    longitude: float | None
    timezone_offset: str | None
    timezone_description: str | None
    dob: datetime | None
    age: int | None
    registered_at: datetime | None
    nat: str | None
    id_name: str | None
    id_value: str | None
    picture_large: str | None
    picture_medium: str | None
    picture_thumbnail: str | None


STAGED_COLUMNS: tuple[str, ...] = StagedUser._fields


def _obj(raw: dict[str, Any], key: str, *, required: bool = False) -> dict[str, Any]:
    value = raw.get(key)
    if value.__class__ is dict:  # the common case first: this runs a dozen times per user
        return value
    if value is None:
        if required:
            raise InvalidUser(f"missing '{key}'")
        return {}
    if not isinstance(value, dict):
        raise InvalidUser(f"'{key}' must be an object, got {type(value).__name__}")
    return value


def _text(value: Any, path: str) -> str | None:
    if value.__class__ is str:  # the common case first: this runs twenty times per user
        return value or None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidUser(f"'{path}' must be text, got {type(value).__name__}")
    text = str(value)
    return text if text != "" else None


def _int(value: Any, path: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidUser(f"'{path}' must be an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise InvalidUser(f"'{path}' must be an integer, got {value!r}")


def _coordinate(value: Any, path: str, limit: float) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidUser(f"'{path}' is not a number: {value!r}") from exc
    if not -limit <= number <= limit:
        raise InvalidUser(f"'{path}' out of range: {number}")
    return number


def _timestamp(block: dict[str, Any], path: str) -> datetime | None:
    value = block.get("date")
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidUser(f"'{path}.date' must be an ISO-8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidUser(f"'{path}.date' is not ISO-8601: {value!r}") from exc
    if parsed.tzinfo is None:
        raise InvalidUser(f"'{path}.date' has no time zone: {value!r}")
    return parsed


def normalize_user(raw: Any) -> StagedUser:
    if not isinstance(raw, dict):
        raise InvalidUser(f"result must be an object, got {type(raw).__name__}")
    login = _obj(raw, "login", required=True)
    try:
        user_id = str(uuid.UUID(str(login.get("uuid"))))
    except ValueError as exc:
        raise InvalidUser(f"'login.uuid' is not a UUID: {login.get('uuid')!r}") from exc
    name = _obj(raw, "name")
    location = _obj(raw, "location")
    street = _obj(location, "street")
    coordinates = _obj(location, "coordinates")
    timezone = _obj(location, "timezone")
    dob = _obj(raw, "dob")
    registered = _obj(raw, "registered")
    identity = _obj(raw, "id")
    picture = _obj(raw, "picture")
    email = _text(raw.get("email"), "email")
    if email is not None and "@" not in email:
        raise InvalidUser(f"'email' is not an address: {email!r}")
    return StagedUser(
        user_id=user_id,
        gender=_text(raw.get("gender"), "gender"),
        title=_text(name.get("title"), "name.title"),
        first_name=_text(name.get("first"), "name.first"),
        last_name=_text(name.get("last"), "name.last"),
        email=email,
        username=_text(login.get("username"), "login.username"),
        phone=_text(raw.get("phone"), "phone"),
        cell=_text(raw.get("cell"), "cell"),
        street_number=_int(street.get("number"), "location.street.number"),
        street_name=_text(street.get("name"), "location.street.name"),
        city=_text(location.get("city"), "location.city"),
        state=_text(location.get("state"), "location.state"),
        country=_text(location.get("country"), "location.country"),
        postcode=_text(location.get("postcode"), "location.postcode"),
        latitude=_coordinate(coordinates.get("latitude"), "location.coordinates.latitude", 90),
        longitude=_coordinate(coordinates.get("longitude"), "location.coordinates.longitude", 180),
        timezone_offset=_text(timezone.get("offset"), "location.timezone.offset"),
        timezone_description=_text(timezone.get("description"), "location.timezone.description"),
        dob=_timestamp(dob, "dob"),
        age=_int(dob.get("age"), "dob.age"),
        registered_at=_timestamp(registered, "registered"),
        nat=_text(raw.get("nat"), "nat"),
        id_name=_text(identity.get("name"), "id.name"),
        id_value=_text(identity.get("value"), "id.value"),
        picture_large=_text(picture.get("large"), "picture.large"),
        picture_medium=_text(picture.get("medium"), "picture.medium"),
        picture_thumbnail=_text(picture.get("thumbnail"), "picture.thumbnail"),
    )
