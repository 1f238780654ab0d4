"""The local stack's alert inbox: a webhook receiver that keeps every alert it is sent.

Local mode points the `alerts_webhook` connection here, so a failed landing check is visible
without a chat or mail service: alerts are appended to `<state>/alerts/alerts.jsonl`, logged, and
listed by `GET /alerts`. In production, point `alerts_webhook` at a real webhook instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

log = logging.getLogger("userstream.alert_inbox")
MAX_BODY_BYTES = 1_000_000


class AlertInbox:
    def __init__(self, path: Path):
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def add(self, alert: object) -> dict:
        entry = {"received_at": datetime.now(UTC).isoformat(), "alert": alert}
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return entry

    def all(self) -> list[dict]:
        if not self.path.exists():
            return []
        with self._lock:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def make_handler(inbox: AlertInbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: object) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/__health":
                self._reply(200, {"status": "ok"})
            elif self.path.rstrip("/") == "/alerts":
                self._reply(200, inbox.all())
            else:
                self._reply(404, {"error": f"no such path {self.path}"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._reply(413, {"error": f"alert larger than {MAX_BODY_BYTES} bytes"})
                return
            raw = self.rfile.read(length)
            try:
                alert = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                alert = {"unparsed_body": raw.decode("utf-8", "replace")}
            entry = inbox.add(alert)
            log.warning("alert received on %s: %s", self.path, json.dumps(alert)[:500])
            self._reply(201, entry)

        def log_message(self, fmt: str, *args: object) -> None:
            log.info("%s %s", self.address_string(), fmt % args)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--inbox", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = ThreadingHTTPServer((args.host, args.port), make_handler(AlertInbox(args.inbox)))
    log.info("alert inbox on http://%s:%d/alerts -> %s", args.host, args.port, args.inbox)
    server.serve_forever()


if __name__ == "__main__":
    main()
