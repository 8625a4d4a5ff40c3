"""Simulated customers over loopback: Telegram and WhatsApp webhooks in, replies caught at the fakes.

The platform fakes of the tests run in this process, so the time a reply arrives at
the fake API and the time its webhook was sent come from one clock. Each message
carries a unique key as its text; the farm (or the baseline) answers ``echo: <key>``,
and the fake resolves the key's waiter when that reply arrives.

- `closed_loop`: every customer sends, waits for its reply, sends again (peak throughput).
- `open_loop`: messages start at a fixed rate whatever the replies do (latency at a load).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import itertools
import json
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.telegram_api import FakeTelegramAPI, text_update
from tests.fakes.whatsapp_api import FakeWhatsAppAPI, sign, text_webhook

TG_TOKEN = "7000000001:AAH-bench-token"
TG_SECRET = "bench-secret"
WA_TOKEN = "EAAG-bench"
WA_SECRET = "bench-app-secret"
WA_PHONE = "106540352242922"
ECHO = "echo: "


class Replies:
    """Futures keyed by message key, resolved when ``echo: <key>`` reaches a fake API.

    A real bot does not echo: for it, `expect` takes the chat, and the chat's next reply
    resolves its oldest waiting message (first reply counts; a second reply to the same
    message is counted in ``unmatched`` when nothing waits).
    """

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.arrivals: dict[str, int] = {}  # key -> times its reply arrived (duplicates > 1)
        self.by_chat: dict[str, collections.deque[tuple[str, asyncio.Future[float]]]] = {}
        self.unmatched = 0

    def expect(self, key: str, chat: str | None = None) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        if chat is not None:
            self.by_chat.setdefault(chat, collections.deque()).append((key, future))
        return future

    def arrived(self, text: str, chat: str | None = None) -> None:
        at = text.rfind(ECHO)  # a first reply may carry the bot disclosure before the echo
        if at < 0:
            self._chat_reply(chat)
            return
        key = text[at + len(ECHO):]
        self.arrivals[key] = self.arrivals.get(key, 0) + 1
        future = self.waiting.pop(key, None)
        if future is not None and not future.done():
            future.set_result(time.perf_counter())

    def _chat_reply(self, chat: str | None) -> None:
        queue = self.by_chat.get(chat or "")
        while queue:
            key, future = queue.popleft()
            if future.done() or self.waiting.get(key) is not future:
                continue  # timed out or given up
            self.waiting.pop(key, None)
            self.arrivals[key] = self.arrivals.get(key, 0) + 1
            future.set_result(time.perf_counter())
            return
        self.unmatched += 1

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.arrivals.values() if n > 1)


class BenchTelegramAPI(FakeTelegramAPI):
    def __init__(self, replies: Replies, **kwargs: Any) -> None:
        super().__init__(TG_TOKEN, **kwargs)
        self.replies = replies

    async def _m_sendMessage(self, params: dict[str, Any], token: str) -> web.Response:
        response = await super()._m_sendMessage(params, token)
        if response.status == 200:
            self.replies.arrived(str(params.get("text", "")), str(params.get("chat_id", "")))
        return response


class BenchWhatsAppAPI(FakeWhatsAppAPI):
    def __init__(self, replies: Replies, **kwargs: Any) -> None:
        super().__init__(WA_TOKEN, WA_PHONE, **kwargs)
        self.replies = replies

    async def _messages(self, request: web.Request) -> web.Response:
        response = await super()._messages(request)
        if response.status == 200:
            try:
                body = json.loads(await request.read())  # cached by aiohttp after the first read
            except ValueError:
                return response
            text = body.get("text", {}).get("body") if isinstance(body.get("text"), dict) else None
            if text is None and isinstance(body.get("interactive"), dict):  # buttons / list
                text = (body["interactive"].get("body") or {}).get("text")
            if isinstance(text, str):
                self.replies.arrived(text, str(body.get("to", "")))
        return response


@dataclass
class Fakes:
    replies: Replies
    telegram: BenchTelegramAPI
    whatsapp: BenchWhatsAppAPI

    @classmethod
    async def start(cls, *, max_records: int = 200_000) -> Fakes:
        replies = Replies()
        telegram = BenchTelegramAPI(replies, max_records=max_records)
        whatsapp = BenchWhatsAppAPI(replies, max_records=max_records)
        await telegram.start()
        await whatsapp.start()
        return cls(replies, telegram, whatsapp)

    async def stop(self) -> None:
        await self.telegram.stop()
        await self.whatsapp.stop()


def farm_channels(fakes: Fakes) -> dict[str, Any]:
    """The ``channels`` block of a bench bot pointing at the fakes."""
    return {
        "telegram": {"token": TG_TOKEN, "webhook_secret": TG_SECRET, "api_base": fakes.telegram.url,
                     "webhook_url": "https://bench.invalid/webhooks/bench/telegram"},
        "whatsapp": {"access_token": WA_TOKEN, "app_secret": WA_SECRET, "verify_token": "bench",
                     "phone_number_id": WA_PHONE, "api_base": fakes.whatsapp.url},
    }


@dataclass(frozen=True, slots=True)
class Customer:
    channel: str  # telegram | whatsapp
    user: str  # chat id / wa_id


def customers(n: int, offset: int = 0, channels: Sequence[str] = ("telegram", "whatsapp")) -> list[Customer]:
    """``n`` customers, spread evenly over ``channels`` (Telegram and WhatsApp by default)."""
    out = []
    for i in range(offset, offset + n):
        if channels[i % len(channels)] == "telegram":
            out.append(Customer("telegram", str(500_000_000 + i)))
        else:
            out.append(Customer("whatsapp", f"49170{i:07d}"))
    return out


_update_ids = itertools.count(int(time.time() * 1000) % 1_000_000_000)
_keys = itertools.count(1)


def webhook_request(base_url: str, bot: str, customer: Customer, text: str) -> tuple[str, bytes, dict[str, str]]:
    """URL, body and headers of one customer message as the platform would POST it."""
    if customer.channel == "telegram":
        update = text_update(int(customer.user), text, update_id=next(_update_ids))
        body = json.dumps(update).encode()
        headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET, "Content-Type": "application/json"}
        return f"{base_url}/webhooks/{bot}/telegram", body, headers
    body = json.dumps(text_webhook(customer.user, text, phone_number_id=WA_PHONE)).encode()
    return f"{base_url}/webhooks/{bot}/whatsapp", body, sign(body, WA_SECRET)


@dataclass
class PhaseResult:
    name: str
    duration: float
    sent: int = 0
    acked: int = 0
    replied: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # seconds, webhook sent -> reply at fake
    offered_rate: float | None = None

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    @property
    def throughput(self) -> float:
        return self.replied / self.duration if self.duration else 0.0

    def percentile(self, p: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[index]

    def as_dict(self) -> dict[str, Any]:
        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000, 2)

        return {
            "phase": self.name,
            "duration_s": round(self.duration, 2),
            "offered_rate": None if self.offered_rate is None else round(self.offered_rate, 1),
            "sent": self.sent,
            "acked": self.acked,
            "replied": self.replied,
            "throughput_msgs_per_s": round(self.throughput, 1),
            "latency_ms": {
                "p50": ms(self.percentile(50)),
                "p90": ms(self.percentile(90)),
                "p99": ms(self.percentile(99)),
                "max": ms(max(self.latencies) if self.latencies else None),
                "mean": ms(statistics.fmean(self.latencies) if self.latencies else None),
            },
            "errors": self.errors,
        }


#: What customers of the demo bot say (``--engines project``): routine requests it answers
#: (examples of its own NLU data), one intent after the other and no phrase twice within
#: 18 messages, so the frustration detector has no reason to call a person.
DEMO_TEXTS = tuple(t for group in zip(
    ("Hello", "Good morning", "Hey there"),
    ("What are your opening hours?", "When is support available?", "Are you open on weekends?"),
    ("How much does web hosting cost?", "What plans do you offer?", "What does a server cost?"),
    ("I forgot my password", "How do I reset my password?", "Reset password"),
    ("Where can I find my invoice?", "I need a copy of the invoice", "I have a question about my invoice"),
    ("Thank you very much", "Thanks for your help", "Many thanks"),
    strict=True) for t in group)
_said: dict[str, int] = {}


async def _one(
    session: aiohttp.ClientSession, replies: Replies, base_url: str, bot: str, customer: Customer,
    result: PhaseResult, reply_timeout: float, counting: list[bool], texts: Sequence[str] | None = None,
) -> None:
    n = next(_keys)
    key = f"k{n}"
    if texts:  # a real bot: say something it understands, match its reply by chat
        said = _said[customer.user] = _said.get(customer.user, -1) + 1
        url, body, headers = webhook_request(base_url, bot, customer, texts[said % len(texts)])
        future = replies.expect(key, chat=customer.user)
    else:
        url, body, headers = webhook_request(base_url, bot, customer, key)
        future = replies.expect(key)
    started = time.perf_counter()
    result.sent += 1
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            if response.status != 200:
                result.error(f"http_{response.status}")
                replies.waiting.pop(key, None)
                return
        result.acked += 1
        arrived = await asyncio.wait_for(future, reply_timeout)
    except TimeoutError:
        result.error("reply_timeout")
        replies.waiting.pop(key, None)
        return
    except aiohttp.ClientError as exc:
        result.error(type(exc).__name__)
        replies.waiting.pop(key, None)
        return
    if counting[0]:
        result.replied += 1
        result.latencies.append(arrived - started)


@contextlib.contextmanager
def driver_gc_paused() -> Iterator[None]:
    """Keep the driver's own garbage collector out of a measured phase.

    The driver keeps every reply it saw (duplicates are counted at the end), so its heap
    grows phase after phase; a full collection of it stalled the driver for up to 150 ms,
    and the replies waiting meanwhile were counted as the farm's latency. During a phase
    the cyclic collector is off (what earlier phases left is frozen first); it runs
    between phases.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


async def closed_loop(
    fakes: Fakes, base_url: str, bot: str, people: Sequence[Customer], duration: float,
    *, name: str = "closed", reply_timeout: float = 30.0, texts: Sequence[str] | None = None,
    pause_gc: bool = False,
) -> PhaseResult:
    """Each customer: send, wait for the reply, repeat; counts replies within ``duration``.

    ``pause_gc``: no cyclic garbage collection in this process during the phase
    (`driver_gc_paused`; the benchmark's driver, not tests sharing a process).
    """
    result = PhaseResult(name, duration)
    counting = [True]
    with driver_gc_paused() if pause_gc else contextlib.nullcontext():
        deadline = time.perf_counter() + duration
        connector = aiohttp.TCPConnector(limit=len(people), force_close=False)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def customer_loop(customer: Customer) -> None:
                while time.perf_counter() < deadline:
                    await _one(session, fakes.replies, base_url, bot, customer, result, reply_timeout, counting,
                               texts)

            started = time.perf_counter()
            tasks = [asyncio.create_task(customer_loop(c)) for c in people]
            await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
            counting[0] = False  # replies after the deadline do not count towards throughput
            result.duration = time.perf_counter() - started
            await asyncio.wait(tasks, timeout=reply_timeout)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return result


async def open_loop(
    fakes: Fakes, base_url: str, bot: str, people: Sequence[Customer], rate: float, duration: float,
    *, name: str = "open", reply_timeout: float = 30.0, max_in_flight: int = 2000,
    texts: Sequence[str] | None = None, pause_gc: bool = False,
) -> PhaseResult:
    """Start ``rate`` messages per second (customers in turn) for ``duration``; latency of each
    (``pause_gc`` as in `closed_loop`)."""
    result = PhaseResult(name, duration, offered_rate=rate)
    counting = [True]
    with driver_gc_paused() if pause_gc else contextlib.nullcontext():
        connector = aiohttp.TCPConnector(limit=max(64, min(max_in_flight, len(people))))
        async with aiohttp.ClientSession(connector=connector) as session:
            tasks: set[asyncio.Task[None]] = set()
            interval = 1.0 / rate
            started = time.perf_counter()
            sent = 0
            ring = itertools.cycle(people)
            while True:
                due = started + sent * interval
                now = time.perf_counter()
                if due - started >= duration:
                    break
                if due > now:
                    await asyncio.sleep(due - now)
                if len(tasks) >= max_in_flight:
                    result.error("driver_backlog")
                else:
                    task = asyncio.create_task(
                        _one(session, fakes.replies, base_url, bot, next(ring), result, reply_timeout, counting, texts)
                    )
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                sent += 1
            if tasks:
                await asyncio.wait(list(tasks), timeout=reply_timeout)
            for task in list(tasks):
                task.cancel()
            result.duration = duration
    return result
