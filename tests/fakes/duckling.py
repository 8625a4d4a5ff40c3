"""A local fake of Facebook's Duckling HTTP server (``stack exec duckling-example-exe``).

Usage::

    with FakeDuckling() as duckling:            # listens on 127.0.0.1, a free port
        config: DucklingEntityExtractor url=duckling.url
        assert duckling.requests[0]["locale"] == "de_DE"
        duckling.stall()                          # hold every answer until release()

``POST /parse`` takes Duckling's form fields (``text``, ``locale``, ``lang``, ``tz``,
``dims`` as a JSON list, ``reftime`` in ms) and answers a JSON array of matches in
Duckling's shapes for the dimensions ``time`` (a value, or an interval for "this
weekend"), ``number``, ``amount-of-money`` and ``email``; ``dims`` filters them, an
unparseable ``dims`` (``null``) means all. Without ``text`` it answers 422 "Need a
'text' parameter to parse", as Duckling does. It runs in its own thread, because Rasa's
extractor (and ours) calls Duckling synchronously.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
MONEY = re.compile(r"(?:\$(?P<usd>\d+(?:\.\d+)?))|(?P<amount>\d+(?:[.,]\d+)?)\s?(?P<unit>euros?|EUR|€|dollars?)", re.IGNORECASE)
NUMBER = re.compile(r"(?<![\w.@$])\d+(?:\.\d+)?(?![\w@])")
TOMORROW = re.compile(r"\b(?:tomorrow|morgen)\b", re.IGNORECASE)
WEEKEND = re.compile(r"\bthis weekend\b", re.IGNORECASE)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _number(text: str) -> int | float:
    value = float(text.replace(",", "."))
    return int(value) if value.is_integer() else value


def parse(text: str, *, reftime_ms: int, tz: str | None, dims: list[str] | None) -> list[dict[str, Any]]:
    """Duckling's answer for ``text`` (only the few expressions this fake knows)."""
    zone = ZoneInfo(tz) if tz else UTC
    now = datetime.fromtimestamp(reftime_ms / 1000, tz=zone)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    found: list[dict[str, Any]] = []
    money_spans: list[tuple[int, int]] = []
    for match in MONEY.finditer(text):
        amount = match.group("usd") or match.group("amount")
        unit = "$" if match.group("usd") or (match.group("unit") or "").lower().startswith("dollar") else "EUR"
        value = {"value": _number(amount), "type": "value", "unit": unit}
        found.append({"body": match.group(0), "start": match.start(), "end": match.end(), "dim": "amount-of-money",
                      "latent": False, "value": value})
        money_spans.append(match.span())
    email_spans = []
    for match in EMAIL.finditer(text):
        found.append({"body": match.group(0), "start": match.start(), "end": match.end(), "dim": "email",
                      "latent": False, "value": {"value": match.group(0)}})
        email_spans.append(match.span())
    for match in NUMBER.finditer(text):
        if any(a <= match.start() < b for a, b in (*money_spans, *email_spans)):
            continue
        found.append({"body": match.group(0), "start": match.start(), "end": match.end(), "dim": "number",
                      "latent": False, "value": {"value": _number(match.group(0)), "type": "value"}})
    for match in TOMORROW.finditer(text):
        day = {"value": _iso(midnight + timedelta(days=1)), "grain": "day", "type": "value"}
        found.append({"body": match.group(0), "start": match.start(), "end": match.end(), "dim": "time",
                      "latent": False, "value": {**day, "values": [day]}})
    for match in WEEKEND.finditer(text):
        friday = midnight + timedelta(days=(4 - midnight.weekday()) % 7, hours=18)
        interval = {"from": {"value": _iso(friday), "grain": "hour"},
                    "to": {"value": _iso(friday + timedelta(days=2, hours=6)), "grain": "hour"}, "type": "interval"}
        found.append({"body": match.group(0), "start": match.start(), "end": match.end(), "dim": "time",
                      "latent": False, "value": {**interval, "values": [dict(interval)]}})
    found.sort(key=lambda m: m["start"])
    return [m for m in found if not dims or m["dim"] in dims]


class FakeDuckling:
    """The fake server; a context manager that starts and stops it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self._open = threading.Event()
        self._open.set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8")).items()}
                fake.requests.append({"_content_type": self.headers.get("Content-Type", ""), "_path": self.path, **form})
                fake._open.wait(timeout=30)
                if self.path != "/parse":
                    self._answer(404, b"Not Found", "text/plain")
                elif "text" not in form:
                    self._answer(422, b"Need a 'text' parameter to parse", "text/plain")
                else:
                    try:
                        dims = json.loads(form.get("dims", "null"))
                    except ValueError:
                        dims = None
                    reftime = int(form.get("reftime") or 0)
                    body = parse(form["text"], reftime_ms=reftime, tz=form.get("tz"), dims=dims if isinstance(dims, list) else None)
                    self._answer(200, json.dumps(body).encode("utf-8"), "application/json")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-duckling", daemon=True)

    def stall(self) -> None:
        """Hold every answer until `release` (to exercise the client's timeout)."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
