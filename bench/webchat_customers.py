"""Web chat customers for the scale-out harness, recording every reply frame they receive.

Each customer opens one web chat socket per farm process (one session), sends its
messages alternating between the processes, each after the previous one was
acknowledged (stored), and keeps its sockets open until the farm is done. Every
``message`` frame that arrives is recorded with its id (the outbox item id), so the
harness counts replies as the customer sees them: a reply sent twice arrives twice.

A socket whose process dies (``kill -9``) is dropped; the message waiting for its ack
is sent again, with the same client id, on the next open socket (as the page does
after a reconnect; the farm de-duplicates it). At the end `settle` asks every open
socket for the history, which (frames on one socket being ordered) also proves that
every frame sent before it was read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

BOT = "demo"
ACK_TIMEOUT = 120.0  # generous: SecantusDB on a shared 2-core machine can queue a write for long


class SocketClosed(Exception):
    """The farm process behind the socket went away."""


@dataclass
class Link:
    """One open socket to one farm process, read by its own task."""

    which: int
    ws: aiohttp.ClientWebSocketResponse
    acks: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    histories: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    reader: asyncio.Task[None] | None = None

    @property
    def open(self) -> bool:
        return not self.ws.closed and self.reader is not None and not self.reader.done()


@dataclass
class Customer:
    """What one customer sent, and every reply frame it received (id, socket), in arrival order."""

    session: str = ""
    sent: list[str] = field(default_factory=list)
    acked_by: list[int] = field(default_factory=list)
    received: list[tuple[str, int]] = field(default_factory=list)
    history_ids: set[str] = field(default_factory=set)  # replies in the history asked for at the end
    resent: int = 0  # messages sent again on another socket because their process died
    links: list[Link] = field(default_factory=list)

    def received_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for message_id, _ in self.received:
            counts[message_id] = counts.get(message_id, 0) + 1
        return counts


async def _read(customer: Customer, link: Link) -> None:
    try:
        async for frame in link.ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            data = frame.json()
            kind = data.get("type")
            if kind == "message" and data.get("role") != "user":
                customer.received.append((str(data["id"]), link.which))
            elif kind in ("ack", "error"):
                link.acks.put_nowait(data)
            elif kind == "history":
                link.histories.put_nowait(data)
    finally:
        link.acks.put_nowait(None)
        link.histories.put_nowait(None)


async def _handshake(ws: aiohttp.ClientWebSocketResponse, session: str, timeout: float = ACK_TIMEOUT) -> str:
    await ws.send_json({"type": "hello", "session": session or None})
    welcome: str | None = None
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.receive_json()
            if frame["type"] == "welcome":
                welcome = str(frame["session"])
            elif frame["type"] == "history" and welcome is not None:
                return welcome
            elif frame["type"] == "error":
                raise RuntimeError(f"web chat error: {frame}")


async def connect(http: aiohttp.ClientSession, urls: Sequence[str], customer: Customer) -> None:
    """A socket to every process that answers (a dead one is skipped), each with its reader."""
    for which, url in enumerate(urls):
        try:
            ws = await http.ws_connect(f"{url}/chat/{BOT}/ws", heartbeat=None)
        except (aiohttp.ClientError, OSError):
            continue
        try:
            customer.session = await _handshake(ws, customer.session)
        except (aiohttp.ClientError, ConnectionError, TypeError):  # the process died meanwhile
            await ws.close()
            continue
        link = Link(which, ws)
        link.reader = asyncio.get_running_loop().create_task(_read(customer, link))
        customer.links.append(link)
    if not customer.links:
        raise RuntimeError("no farm process accepts web chat sockets")


async def _send_and_wait_ack(link: Link, frame: dict[str, Any]) -> None:
    try:
        await link.ws.send_json(frame)
    except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
        raise SocketClosed from exc
    async with asyncio.timeout(ACK_TIMEOUT):
        while True:
            answer = await link.acks.get()
            if answer is None:
                raise SocketClosed
            if answer["type"] == "error":
                raise RuntimeError(f"web chat error: {answer}")
            if answer.get("id") == frame["id"]:
                return


async def send_messages(customer: Customer, messages: int, tag: str, on_ack: Callable[[], None]) -> None:
    """Send ``messages`` messages, alternating between the sockets, each acked before the next."""
    for n in range(messages):
        text = f"{tag} message {n}"
        frame = {"type": "message", "id": f"m{n}", "text": text}
        start = n % len(customer.links)
        for attempt in range(len(customer.links)):
            link = customer.links[(start + attempt) % len(customer.links)]
            if not link.open and attempt < len(customer.links) - 1:
                continue
            try:
                await _send_and_wait_ack(link, frame)
            except SocketClosed:
                customer.resent += 1
                continue
            customer.sent.append(text)
            customer.acked_by.append(link.which)
            on_ack()
            break
        else:
            raise RuntimeError(f"{tag}: no farm process acknowledged {text!r}")


async def settle(customer: Customer) -> None:
    """Ask each open socket for the history: every frame sent before it has been read then."""
    for link in customer.links:
        if not link.open:
            continue
        try:
            await link.ws.send_json({"type": "history"})
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            continue
        async with asyncio.timeout(ACK_TIMEOUT):
            history = await link.histories.get()
        if history is not None:
            customer.history_ids.update(str(m["id"]) for m in history["messages"] if m.get("role") != "user")


async def close(customer: Customer) -> None:
    for link in customer.links:
        with contextlib.suppress(Exception):
            await link.ws.close()
        if link.reader is not None:
            await asyncio.gather(link.reader, return_exceptions=True)
