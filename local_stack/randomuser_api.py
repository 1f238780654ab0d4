"""A randomuser.me-compatible API for offline runs, demos and tests.

Serves the v1.4 response shape with all 21 nationalities and the real API's quirks (int and string
postcodes, coordinates as strings, null `id.value` for IR/NZ/TR/UA, letters in phone numbers,
non-ASCII names), deterministic in (seed, page, results, nat). Honours `results` (1..5000; anything
else silently becomes 1, as the real API does), `seed`, `page`, `nat`, `inc`/`exc`, `noinfo`.

Faults for tests: `POST /__faults {"mode": M, "count": N, "retry_after": S, "records": K,
"seed": X}` makes the next N API requests (only those with seed X, when given) fail with M:
`rate_limit` (429 + Retry-After), `server_error` (bare 500), `html` (502 HTML page), `malformed`
(200 with truncated JSON), `empty` (200 with no results while info.results is 1), `short` (200
with one user fewer than asked: the real API's answer to a `results` it does not take),
`bad_records` (200 with the first K records corrupted).
`DELETE /__faults` clears them. Run: `python -m local_stack.randomuser_api --port 8000`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

import orjson


def set_faults(base_url: str, **spec: Any) -> None:
    """The fault switch, from a client: `spec` as in this module's docstring; none clears it."""
    import requests

    url = f"{base_url}/__faults"
    if spec:
        requests.post(url, json=spec, timeout=5).raise_for_status()
    else:
        requests.delete(url, timeout=5).raise_for_status()


VERSION = "1.4"
MAX_RESULTS = 5000
FIELDS = ("gender", "name", "location", "email", "login", "registered", "dob", "phone", "cell",
          "id", "picture", "nat")


@dataclass(frozen=True)
class Nationality:
    country: str
    male: tuple[str, ...]
    female: tuple[str, ...]
    last: tuple[str, ...]
    places: tuple[tuple[str, str], ...]  # (city, state)
    streets: tuple[str, ...]
    id_name: str
    postcode: str  # "int3", "int4", "int5", or a pattern: A=letter, 9=digit
    phone: str  # pattern: 9=digit, A=letter


NATIONALITIES: dict[str, Nationality] = {
    "AU": Nationality("Australia", ("Leon", "Jack", "Noah"), ("Ella", "Chloe", "Ruby"),
                      ("Nichols", "Harris", "Walker"), (("Bendigo", "Victoria"),
                      ("Cairns", "Queensland")), ("E Sandy Lake Rd", "Pecan Acres Ln"), "TFN",
                      "int3", "09-9999-9999"),
    "BR": Nationality("Brazil", ("Anselmo", "Caetano"), ("Lívia", "Sônia"),
                      ("Araújo", "Gonçalves"), (("Vitória", "Pará"), ("Maringá", "Paraná")),
                      ("Rua Três", "Rua São Jorge"), "CPF", "int5", "(99) 9999-9999"),
    "CA": Nationality("Canada", ("Liam", "Félix"), ("Chloé", "Maya"), ("Roy", "Gagné"),
                      (("Selkirk", "Manitoba"), ("Trois-Rivières", "Québec")),
                      ("Parliament St", "Dundas Rd"), "SIN", "A9A 9A9", "A99-A99-9999"),
    "CH": Nationality("Switzerland", ("Loïc", "Urs"), ("Élodie", "Jana"), ("Roux", "Meyer"),
                      (("Glarus", "Glarus"), ("Lugano", "Ticino")), ("Rue de L'Abbaye",),
                      "AVS", "int4", "079 999 99 99"),
    "DE": Nationality("Germany", ("Jörg", "Lukas"), ("Bärbel", "Grete"),
                      ("Weiß", "Großmann", "Müller"), (("Gießen", "Hessen"),
                      ("Düsseldorf", "Nordrhein-Westfalen")), ("Schloßstraße", "Lindenweg"),
                      "SVNR", "int5", "0999-9999999"),
    "DK": Nationality("Denmark", ("Søren", "Mads"), ("Freja", "Ida"), ("Jørgensen", "Holm"),
                      (("Aarhus N", "Midtjylland"), ("Ærøskøbing", "Syddanmark")),
                      ("Ørstedsvej", "Kirkevej"), "CPR", "int4", "99999999"),
    "ES": Nationality("Spain", ("Raúl", "Iñigo"), ("Begoña", "Inés"), ("Núñez", "Ibáñez"),
                      (("Alcalá de Henares", "Comunidad de Madrid"), ("Cádiz", "Andalucía")),
                      ("Calle de Alcalá", "Avenida de Andalucía"), "DNI", "int5",
                      "999-999-999"),
    "FI": Nationality("Finland", ("Eetu", "Väinö"), ("Siiri", "Aino"), ("Mäkelä", "Heikkinen"),
                      (("Jyväskylä", "Central Finland"), ("Hämeenlinna", "Tavastia Proper")),
                      ("Hämeenkatu", "Pispalan Valtatie"), "HETU", "int5", "09-999-999"),
    "FR": Nationality("France", ("Théo", "Loïc"), ("Maëlle", "Océane"), ("Lefèvre", "Girard"),
                      (("Saint-Étienne", "Loire"), ("Besançon", "Doubs")),
                      ("Rue de l'Église", "Place du 8 Février 1962"), "INSEE", "int5",
                      "09-99-99-99-99"),
    "GB": Nationality("United Kingdom", ("Oliver", "Harry"), ("Amelia", "Isla"),
                      ("Jordan", "O'Connor"), (("Salisbury", "Wiltshire"),
                      ("Bangor", "Gwynedd")), ("Albert Road", "Church Lane"), "NINO",
                      "AA9A 9AA", "099999 99999"),
    "IE": Nationality("Ireland", ("Miguel", "Seán"), ("Aoife", "Siobhán"),
                      ("Jordan", "Ó Briain"), (("Mullingar", "Louth"),
                      ("Galway", "Galway")), ("Albert Road", "Main Street"), "PPS", "int5",
                      "099-999-9999"),
    "IN": Nationality("India", ("Aarav", "Vihaan"), ("Ananya", "Diya"), ("Sharma", "Iyer"),
                      (("Pune", "Maharashtra"), ("Kochi", "Kerala")), ("MG Road", "Park St"),
                      "UIDAI", "int6", "99999-99999"),
    "IR": Nationality("Iran", ("امیرعلی", "محمدمهدی"), ("نازنین زهرا", "یاسمن"),
                      ("کامروا", "احمدی"), (("تهران", "تهران"), ("شیراز", "فارس")),
                      ("میدان ولیعصر", "شهید رجایی"), "", "int5", "099-99999999"),
    "MX": Nationality("Mexico", ("José", "Ramón"), ("Lucía", "María José"),
                      ("Peña", "Jiménez"), (("Mérida", "Yucatán"),
                      ("San Luis Potosí", "San Luis Potosí")), ("Calle Juárez",), "NSS",
                      "int5", "(699) 999 9999"),
    "NL": Nationality("Netherlands", ("Sjoerd", "Daan"), ("Fenna", "Iris"),
                      ("van der Meer", "de Jong"), (("'s-Hertogenbosch", "Noord-Brabant"),
                      ("Utrecht", "Utrecht")), ("Kerkstraat",), "BSN", "9999 AA",
                      "(099) 999-9999"),
    "NO": Nationality("Norway", ("Håkon", "Øyvind"), ("Åse", "Ingrid"), ("Bråthen", "Lie"),
                      (("Tromsø", "Troms"), ("Bærum", "Akershus")), ("Østre Aker vei",),
                      "FN", "0999", "99999999"),
    "NZ": Nationality("New Zealand", ("Nikau", "Liam"), ("Aroha", "Mia"), ("Ngata", "Smith"),
                      (("Whanganui", "Manawatu-Wanganui"), ("Rotorua", "Bay of Plenty")),
                      ("Tawa Street",), "", "int4", "(099)-999-9999"),
    "RS": Nationality("Serbia", ("Đorđe", "Miloš"), ("Jovana", "Milica"),
                      ("Petrović", "Ćirić", "Đokić"), (("Čačak", "Moravica"),
                      ("Niš", "Nišava")), ("Njegoševa", "Kneza Miloša"), "SID", "int5",
                      "099-9999-999"),
    "TR": Nationality("Turkey", ("Çağrı", "Ilgaz"), ("Işıl", "Gülşen"),
                      ("Karaböcek", "Akgül"), (("Kırıkkale", "Kırıkkale"),
                      ("Şanlıurfa", "Şanlıurfa")), ("Atatürk Sk",), "", "int5",
                      "(999)-999-9999"),
    "UA": Nationality("Ukraine", ("Добромир", "Ярослав"), ("Світлана", "Олеся"),
                      ("Шевченко", "Коваль"), (("Київ", "Київська"),
                      ("Львів", "Львівська")), ("Хрещатик",), "", "int5", "(099) A99-9999"),
    "US": Nationality("United States", ("Ricky", "Brandon"), ("Jessie", "Tina"),
                      ("Alexander", "Lewis"), (("Lewisville", "Wisconsin"),
                      ("Allentown", "Nevada")), ("E Center St", "Hogan St"), "SSN", "int5",
                      "(999)-999-9999"),
}
TITLES = {"male": ("Mr", "Monsieur"), "female": ("Ms", "Mrs", "Miss", "Madame", "Mademoiselle")}
OFFSETS = (("-5:00", "Eastern Time (US & Canada), Bogota, Lima"), ("0:00", "Western Europe Time, "
           "London, Lisbon, Casablanca"), ("+1:00", "Brussels, Copenhagen, Madrid, Paris"),
           ("+5:45", "Kathmandu"), ("+9:30", "Adelaide, Darwin"))
WORDS = ("organic", "tiny", "silver", "happy", "lazy", "brown", "blue", "koala", "fish", "lion")
NOW = datetime(2026, 11, 1, tzinfo=UTC)


@cache
def _compile(pattern: str) -> tuple[str, int, int]:
    """A pattern (9 = a digit, A = a letter, anything else literal) as a format string that
    takes a string of digits and a string of letters, with how many of each it needs."""
    parts, digits, letters = [], 0, 0
    for ch in pattern:
        if ch == "9":
            parts.append(f"{{0[{digits}]}}")
            digits += 1
        elif ch == "A":
            parts.append(f"{{1[{letters}]}}")
            letters += 1
        else:
            parts.append(ch.replace("{", "{{").replace("}", "}}"))
    return "".join(parts), digits, letters


LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Generation draws with `int(random() * n)` rather than `randrange`/`choice`: the same
# determinism in the seed at a fraction of the cost, so the local API keeps up with the ingest
# task it feeds (5,000-user pages).


def _pattern(random: Callable[[], float], pattern: str) -> str:
    fmt, digits, letters = _compile(pattern)
    # One draw holds 15 decimal digits; the longest pattern has 11.
    return fmt.format(f"{int(random() * 10 ** digits):0{digits}d}",
                      _letters(random, letters))


def _letters(random: Callable[[], float], count: int) -> str:
    return "".join([LETTERS[int(random() * 26)] for _ in range(count)])


def _postcode(random: Callable[[], float], fmt: str) -> int | str:
    if fmt.startswith("int"):
        low = 10 ** (int(fmt[3:]) - 1)
        return low + int(random() * 9 * low)
    return _pattern(random, fmt)


NOW_EPOCH = int(NOW.timestamp())
YEAR_S = 365.25 * 86400


def _date(random: Callable[[], float], min_years: int, max_years: int) -> tuple[str, int]:
    seconds_ago = int((min_years + random() * (max_years - min_years)) * YEAR_S)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOW_EPOCH - seconds_ago))
    return f"{stamp}.{int(random() * 1000):03d}Z", int(seconds_ago // YEAR_S)


T = TypeVar("T")


def _pick(random: Callable[[], float], options: Sequence[T]) -> T:
    return options[int(random() * len(options))]


def make_user(rng: random.Random, nat_code: str) -> dict[str, Any]:
    nat = NATIONALITIES[nat_code]
    bits, draw = rng.getrandbits, rng.random
    male = draw() < 0.5
    gender = "male" if male else "female"
    first = _pick(draw, nat.male if male else nat.female)
    last = _pick(draw, nat.last)
    city, state = _pick(draw, nat.places)
    dob, age = _date(draw, 18, 80)
    registered, registered_age = _date(draw, 0, 20)
    offset, description = _pick(draw, OFFSETS)
    portrait = "men" if male else "women"
    number = int(draw() * 100)
    return {
        "gender": gender,
        "name": {"title": _pick(draw, TITLES[gender]), "first": first, "last": last},
        "location": {
            "street": {"number": 1 + int(draw() * 9998), "name": _pick(draw, nat.streets)},
            "city": city, "state": state, "country": nat.country,
            "postcode": _postcode(draw, nat.postcode),
            "coordinates": {"latitude": f"{draw() * 180 - 90:.4f}",
                            "longitude": f"{draw() * 360 - 180:.4f}"},
            "timezone": {"offset": offset, "description": description},
        },
        "email": f"{_ascii(first)}.{_ascii(last)}@example.com",
        "login": {
            "uuid": str(uuid.UUID(int=bits(128), version=4)),
            "username": f"{_pick(draw, WORDS)}{_pick(draw, WORDS)}{int(draw() * 1000)}",
            "password": f"{_pick(draw, WORDS)}{int(draw() * 100)}",
            "salt": _letters(draw, 8),
            # Random hex of the right lengths: the real API's hashes carry no meaning either.
            "md5": f"{bits(128):032x}", "sha1": f"{bits(160):040x}", "sha256": f"{bits(256):064x}",
        },
        "dob": {"date": dob, "age": age},
        "registered": {"date": registered, "age": registered_age},
        "phone": _pattern(draw, nat.phone), "cell": _pattern(draw, nat.phone),
        "id": {"name": nat.id_name,
               "value": None if not nat.id_name else f"{int(draw() * 10 ** 9):09d}"},
        "picture": {
            "large": f"https://randomuser.me/api/portraits/{portrait}/{number}.jpg",
            "medium": f"https://randomuser.me/api/portraits/med/{portrait}/{number}.jpg",
            "thumbnail": f"https://randomuser.me/api/portraits/thumb/{portrait}/{number}.jpg",
        },
        "nat": nat_code,
    }


@cache
def _ascii(name: str) -> str:
    return name.encode("ascii", "ignore").decode().lower().replace(" ", "") or "user"


def parse_nat(raw: str | None) -> list[str]:
    """Comma list, case-insensitive; one unknown code makes the API ignore the whole list."""
    if not raw:
        return sorted(NATIONALITIES)
    codes = [code.strip().upper() for code in raw.split(",") if code.strip()]
    if not codes or any(code not in NATIONALITIES for code in codes):
        return sorted(NATIONALITIES)
    return codes


def parse_results(raw: str | None) -> int:
    try:
        value = int(raw) if raw is not None else 1
    except ValueError:
        return 1
    return value if 1 <= value <= MAX_RESULTS else 1


def generate(seed: str, page: int, results: int, nats: list[str]) -> list[dict[str, Any]]:
    key = f"{seed}|{page}|{results}|{','.join(nats)}".encode()
    rng = random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
    return [make_user(rng, _pick(rng.random, nats)) for _ in range(results)]


def select_fields(user: dict[str, Any], inc: str | None, exc: str | None) -> dict[str, Any]:
    if inc:
        wanted = {f.strip().lower() for f in inc.split(",")}
        return {k: v for k, v in user.items() if k in wanted}
    if exc:
        unwanted = {f.strip().lower() for f in exc.split(",")}
        return {k: v for k, v in user.items() if k not in unwanted}
    return user


def corrupt(users: list[dict[str, Any]], count: int) -> None:
    """Damages the first `count` users in the ways real bad data arrives."""
    damages = (
        lambda u: u["login"].__setitem__("uuid", "not-a-uuid"),
        lambda u: u["location"]["coordinates"].__setitem__("latitude", "north"),
        lambda u: u["dob"].__setitem__("date", "yesterday"),
        lambda u: u.pop("login"),
        lambda u: u.__setitem__("email", "nobody-at-example.com"),
    )
    for index, user in enumerate(users[:count]):
        damages[index % len(damages)](user)


class FaultPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.mode: str | None = None
        self.remaining = 0
        self.retry_after = 1
        self.records = 1
        self.seed: str | None = None
        self.served = 0

    def set(self, spec: dict[str, Any]) -> None:
        with self._lock:
            self.mode = spec.get("mode")
            self.remaining = int(spec.get("count", 1))
            self.retry_after = int(spec.get("retry_after", 1))
            self.records = int(spec.get("records", 1))
            self.seed = spec.get("seed")

    def take(self, seed: str | None = None) -> str | None:
        with self._lock:
            self.served += 1
            if self.mode and self.remaining > 0 and self.seed in (None, seed):
                self.remaining -= 1
                return self.mode
            return None

    def state(self) -> dict[str, Any]:
        return {"mode": self.mode, "remaining": self.remaining, "served": self.served}


HTML_ERROR = (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
              b"<h1>502 Bad Gateway</h1><p>cloudflare</p></body></html>")


class Handler(BaseHTTPRequestHandler):
    server_version = "userstream-randomuser/1.0"
    faults: FaultPlan

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload, ensure_ascii=False).encode(), headers=headers)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/__health":
            return self._json(200, {"status": "ok"})
        if url.path == "/__faults":
            return self._json(200, self.faults.state())
        parts = [p for p in url.path.split("/") if p]
        if not parts or parts[0] != "api" or len(parts) > 2:
            return self._send(404, b"Not Found", "text/plain")
        if len(parts) == 2 and parts[1] != VERSION:
            return self._send(404, b"Not Found", "text/plain")
        return self._api(parse_qs(url.query))

    def _api(self, query: dict[str, list[str]]) -> None:
        def arg(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        fault = self.faults.take(arg("seed"))
        if fault == "rate_limit":
            return self._json(429, {"error": "Whoa, ease up there cowboy..."},
                              {"Retry-After": str(self.faults.retry_after)})
        if fault == "server_error":
            return self._send(500, b"Internal Server Error", "text/plain")
        if fault == "html":
            return self._send(502, HTML_ERROR, "text/html")
        results = parse_results(arg("results"))
        seed = arg("seed") or uuid.uuid4().hex[:16]
        try:
            page = int(arg("page") or 1)
        except ValueError:
            page = 1
        page = page if 1 <= page <= 10000 else 1
        nats = parse_nat(arg("nat"))
        users = generate(seed, page, results, nats)
        if fault == "bad_records":
            corrupt(users, self.faults.records)
        if fault == "short":
            users = users[:-1]
        users = [select_fields(u, arg("inc"), arg("exc")) for u in users]
        info = {"seed": seed, "results": len(users), "page": page, "version": VERSION}
        if fault == "empty":
            return self._json(200, {"results": [], "info": {**info, "results": 1}})
        payload: dict[str, Any] = {"results": users}
        if arg("noinfo") is None:
            payload["info"] = info
        body = orjson.dumps(payload)  # UTF-8, non-ASCII kept as is
        if fault == "malformed":
            body = body[: max(1, len(body) // 2)]
        return self._send(200, body)

    def do_POST(self) -> None:
        if urlparse(self.path).path != "/__faults":
            return self._send(404, b"Not Found", "text/plain")
        length = int(self.headers.get("Content-Length") or 0)
        try:
            spec = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._json(400, {"error": "fault spec must be JSON"})
        self.faults.set(spec)
        return self._json(200, self.faults.state())

    def do_DELETE(self) -> None:
        self.faults.set({"mode": None, "count": 0})
        return self._json(200, self.faults.state())


def make_server(host: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"faults": FaultPlan()})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port)
    print(f"randomuser-compatible API on http://{args.host}:{args.port}/api/{VERSION}/",
          flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
