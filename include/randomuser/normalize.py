"""From one randomuser.me API result to one staging row. Pure and typed.

The stable identity of a user is `login.uuid` (never a generated id), so re-ingesting a window
finds the same rows. Every value is kept as the API gave it (empty text stays empty, null stays
null), with three conversions of representation only: integer postcodes become their digits
(the API sends ints for some countries, strings for others), decimal-text coordinates become
numbers, ISO-8601 dates become timestamps. A result that does not fit, or breaks the record
contract (`include/record_contract.py`), raises InvalidUser with the reason.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, NamedTuple

from include.record_contract import USER_CONTRACT


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
# The contract's rules for the fields a staged user has (the outbox adds the event's own).
STAGED_CONTRACT = USER_CONTRACT.subset(STAGED_COLUMNS)


def _obj(raw: dict[str, Any], key: str, *, required: bool = False) -> dict[str, Any]:
    value = raw.get(key)
    if value.__class__ is dict:  # the common case first: this runs a dozen times per user
        return value
    if value is None:
        if required:
            raise InvalidUser(f"missing '{key}'")
        return {}
    raise InvalidUser(f"'{key}' must be an object, got {type(value).__name__}")


def _text(value: Any, path: str) -> str | None:
    """Text as given; an integer (the API's numeric postcodes) becomes its decimal digits."""
    if value.__class__ is str or value is None:  # the common case first: twenty times per user
        return value
    if value.__class__ is int:
        return str(value)
    raise InvalidUser(f"'{path}' must be text, got {type(value).__name__}")


INTEGER_TEXT = re.compile(r"-?[0-9]{1,20}")
DECIMAL_TEXT = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?")


def _int(value: Any, path: str) -> int | None:
    """An integer, or its ASCII decimal text; the range is the contract's to check."""
    if value is None or value.__class__ is int:
        return value
    if value.__class__ is str and INTEGER_TEXT.fullmatch(value):
        return int(value)
    raise InvalidUser(f"'{path}' must be an integer, got {_preview(value)}")


def _coordinate(value: Any, path: str, limit: float) -> float | None:
    """The API sends coordinates as decimal text; plain numbers are taken too."""
    if value is None:
        return None
    numeric = value.__class__ in (int, float)
    if not numeric and not (value.__class__ is str and DECIMAL_TEXT.fullmatch(value)):
        raise InvalidUser(f"'{path}' is not a number: {_preview(value)}")
    try:
        number = float(value)
    except OverflowError as exc:
        raise InvalidUser(f"'{path}' out of range: {_preview(value)}") from exc
    if not -limit <= number <= limit:
        raise InvalidUser(f"'{path}' out of range: {_preview(value)}")
    return number


def _timestamp(block: dict[str, Any], path: str) -> datetime | None:
    value = block.get("date")
    if value is None:
        return None
    if value.__class__ is not str:
        raise InvalidUser(f"'{path}.date' must be an ISO-8601 string, got {_preview(value)}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidUser(f"'{path}.date' is not ISO-8601: {_preview(value)}") from exc
    if parsed.tzinfo is None:
        raise InvalidUser(f"'{path}.date' has no time zone: {_preview(value)}")
    return parsed


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}... ({len(text)} characters)"


def _user_id(login: dict[str, Any]) -> str:
    value = login.get("uuid")
    if value.__class__ is not str:
        raise InvalidUser(f"'login.uuid' must be text, got {_preview(value)}")
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise InvalidUser(f"'login.uuid' is not a UUID: {_preview(value)}") from exc


def normalize_user(raw: Any) -> StagedUser:
    """One API result as a staging row that meets the record contract, or InvalidUser."""
    if raw.__class__ is not dict:
        raise InvalidUser(f"result must be an object, got {type(raw).__name__}")
    login = _obj(raw, "login", required=True)
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
    if email and "@" not in email:
        raise InvalidUser(f"'email' is not an address: {_preview(email)}")
    user = StagedUser(
        user_id=_user_id(login),
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
    if problem := STAGED_CONTRACT.violation(user._asdict()):
        raise InvalidUser(problem)
    return user
