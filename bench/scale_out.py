"""Scale-out: web chat customers against one or two farm processes sharing one MongoDB.

    .venv/bin/python bench/scale_out.py [--messages 1000] [--customers 100] [--processes 1 2]
        [--mongodb-url URL] [--engine echo|project] [--out bench/results/scale_out.json]

Each customer opens a web chat socket to every process (same session) and sends its
messages one after the other, alternating between the processes, each after the
previous one was acknowledged (stored). The clock runs from the first message until
every message is processed and every reply is sent; then the run is verified: every
message processed once, each conversation's transcript and replies in order.

Without ``--mongodb-url`` a SecantusDB server is started (tests' test extra). Its
numbers say nothing about MongoDB's own speed: SecantusDB is 10-70x slower than
SQLite and serialises writes, so a second process cannot add throughput there. Point
``--mongodb-url`` at a real replica set for numbers that mean something.

``--engine echo`` (default) runs ``switchboard run`` with a deterministic echo engine
so the store and pipeline are measured, not NLU; ``--engine project`` runs the plain
``switchboard`` console script with the configured bot project.

The same harness drives ``tests/integration/test_two_processes.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp
import yaml

from core.model import Identity
from core.store.base import OutboxState
from core.store.mongo import MongoStore
from tests.support.engines import EchoEngine

BOT = "demo"
DEMO_PROJECT = ROOT / "config" / "demo"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_farm_config(directory: Path, *, port: int, mongo_url: str, database: str,
                      project: Path = DEMO_PROJECT, log_level: str = "warning") -> Path:
    """A farm.yml for one process: web chat bot ``demo`` on the shared MongoDB database."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        "store": {"kind": "mongodb", "url": mongo_url, "database": database},
        "delivery": {"poll_interval": 0.05, "backoff_initial": 0.05, "backoff_max": 1.0},
        "desk": {"web": {"enabled": False}},
        # Many near-identical messages look like a frustrated customer; the harness measures
        # the bot path, so the frustration handoff is out of reach (scores are 0..1).
        "bots": {BOT: {"project": str(project), "languages": ["en"], "default_language": "en",
                       "handoff": {"frustration_threshold": 2.0},
                       "channels": {"webchat": {"messages_per_minute": 100_000}}}},
        "log_level": log_level,
    }
    path = directory / "farm.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


# -- the farm process ---------------------------------------------------------------------

def _serve_with_echo_engine(config: str) -> None:
    """``switchboard run --config CONFIG`` with the echo engine in place of the bot project's."""
    import core.farm
    from core.cli import main

    async def echo_engine(_config: Any, _bot: str) -> Any:
        return EchoEngine()

    core.farm.load_engine = echo_engine  # type: ignore[assignment]
    sys.argv = ["switchboard", "run", "--config", config]
    main()


@dataclass
class FarmProcess:
    config: Path
    port: int
    engine: str = "echo"
    log_path: Path | None = None
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.engine == "project":
            return [str(Path(sys.executable).parent / "switchboard"), "run", "--config", str(self.config)]
        return [sys.executable, str(Path(__file__).resolve()), "serve", "--config", str(self.config)]

    async def start(self, timeout: float = 120.0) -> None:
        """Start the process and wait until its ``/readyz`` answers 200."""
        log = Path(self.log_path or os.devnull).open("wb")  # noqa: ASYNC230, SIM115 (local file, closed below)
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.command(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    raise RuntimeError(f"farm process exited with {self.process.returncode}: {self._tail()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{self.url}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"farm process not ready after {timeout} s: {self._tail()}")

    def _tail(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-3000:]
        return ""

    async def stop(self) -> None:
        """SIGTERM (graceful: the farm drains turns and sends), SIGKILL after 15 s."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout=15)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


@contextlib.asynccontextmanager
async def farm_processes(workdir: Path, count: int, mongo_url: str, database: str,
                         engine: str = "echo", log_level: str = "warning") -> AsyncIterator[list[FarmProcess]]:
    """``count`` farm processes on one database, each on its own free port; stopped on exit."""
    farms = []
    for n in range(count):
        port = free_port()
        config = write_farm_config(workdir / f"farm{n}", port=port, mongo_url=mongo_url, database=database,
                                   log_level=log_level)
        farms.append(FarmProcess(config, port, engine, log_path=workdir / f"farm{n}.log"))
    try:
        await asyncio.gather(*(f.start() for f in farms))
        yield farms
    finally:
        await asyncio.gather(*(f.stop() for f in farms), return_exceptions=True)


# -- customers ------------------------------------------------------------------------------

@dataclass
class Customer:
    session: str = ""
    sent: list[str] = field(default_factory=list)
    acked_by: list[int] = field(default_factory=list)


async def _receive(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 30.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.receive_json()
            if frame["type"] == kind:
                return dict(frame)
            if frame["type"] == "error":
                raise RuntimeError(f"web chat error: {frame}")


async def run_customer(http: aiohttp.ClientSession, urls: Sequence[str], messages: int, tag: str) -> Customer:
    """One customer: a socket per process, messages alternating between them, each acked before the next."""
    customer = Customer()
    sockets = []
    for url in urls:
        ws = await http.ws_connect(f"{url}/chat/{BOT}/ws", heartbeat=None)
        await ws.send_json({"type": "hello", "session": customer.session or None})
        customer.session = (await _receive(ws, "welcome"))["session"]
        await _receive(ws, "history")
        sockets.append(ws)
    try:
        for n in range(messages):
            which = n % len(sockets)
            text = f"{tag} message {n}"
            await sockets[which].send_json({"type": "message", "id": f"m{n}", "text": text})
            await _receive(sockets[which], "ack")
            customer.sent.append(text)
            customer.acked_by.append(which)
    finally:
        for ws in sockets:
            await ws.close()
    return customer


async def drive(urls: Sequence[str], customers: int, messages: int, concurrency: int = 50) -> list[Customer]:
    """``customers`` customers sending ``messages`` messages in total, at most ``concurrency`` at once."""
    per_customer = [messages // customers + (1 if n < messages % customers else 0) for n in range(customers)]
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def one(n: int) -> Customer:
            async with gate:
                return await run_customer(http, urls, per_customer[n], f"c{n}")

        return list(await asyncio.gather(*(one(n) for n in range(customers))))


async def wait_until_done(store: MongoStore, messages: int, timeout: float) -> None:
    """Until no inbox item and no reply is pending (twice in a row), and ``messages`` replies are out."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        counts = await store.outbox_counts()
        done = (counts[OutboxState.PENDING] == 0
                and counts[OutboxState.SENT] + counts[OutboxState.FAILED] >= messages
                and not await store.conversations_with_pending_inbox(limit=1))
        quiet = quiet + 1 if done else 0
        if quiet >= 2:
            return
        await asyncio.sleep(0.2)
    counts = await store.outbox_counts()
    pending = await store.conversations_with_pending_inbox(limit=5)
    raise TimeoutError(f"not done after {timeout} s: outbox {dict(counts)}, pending inbox in {pending}")


async def verify(store: MongoStore, customers: Sequence[Customer]) -> dict[str, Any]:
    """Every message processed once; each conversation's transcript and replies in order.

    Other layers may add replies (the privacy disclosure in the first answer), so each
    message must be followed by its echo before the next message, and the outbox must
    match the transcript's bot events one to one, sent in that order.
    """
    problems: list[str] = []
    raw = store._require()  # the harness reads sent_at, which the contract does not expose
    for customer in customers:
        who = customer.session[:8]
        contacts = await store.find_contacts(BOT, identity=Identity("webchat", customer.session, customer.session))
        if len(contacts) != 1:
            problems.append(f"{who}: {len(contacts)} contacts")
            continue
        conversation = await store.conversation_for(BOT, contacts[0].id)
        events = await store.transcript(conversation.id)
        users = [e.data.get("text") for e in events if e.type == "user"]
        if users != customer.sent:
            problems.append(f"{who}: user events {users} != sent {customer.sent}")
            continue
        answers: list[list[str]] = []
        for e in events:
            if e.type == "user":
                answers.append([])
            elif e.type == "bot" and answers:
                answers[-1].append(str(e.data.get("text")))
        for text, replies in zip(customer.sent, answers, strict=True):
            if not any(r.endswith(f"echo: {text}") for r in replies):
                problems.append(f"{who}: {text!r} answered by {replies}")
        if await store.pending_inbox(conversation.id):
            problems.append(f"{who}: inbox items left unprocessed")
        bots = [str(e.data.get("text")) for e in events if e.type == "bot"]
        outbox = [doc async for doc in raw.outbox.find({"conversation_id": conversation.id}).sort("oseq", 1)]
        states = [d["state"] for d in outbox]
        if states != [OutboxState.SENT.value] * len(bots):
            problems.append(f"{who}: {len(bots)} bot events but outbox states {states}")
        if [d["outbound"]["text"] for d in outbox] != bots:
            problems.append(f"{who}: outbox order differs from the transcript")
        sent_at = [d.get("sent_at", 0) for d in outbox]
        if sent_at != sorted(sent_at):
            problems.append(f"{who}: replies sent out of order")
    return {"customers": len(customers), "messages": sum(len(c.sent) for c in customers), "problems": problems}


@dataclass
class RunResult:
    processes: int
    messages: int
    customers: int
    seconds: float
    verified: dict[str, Any]

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"processes": self.processes, "messages": self.messages, "customers": self.customers,
                "seconds": round(self.seconds, 2), "messages_per_second": round(self.per_second, 1),
                "problems": self.verified["problems"][:20], "problem_count": len(self.verified["problems"])}


async def run_once(workdir: Path, mongo_url: str, *, processes: int, messages: int, customers: int,
                   engine: str = "echo", timeout: float = 600.0, log_level: str = "warning") -> RunResult:
    """Start ``processes`` farms on a fresh database, drive the customers, wait, verify."""
    database = f"scale_{processes}p_{uuid.uuid4().hex[:8]}"
    store = MongoStore(mongo_url, database)
    await store.open()
    try:
        async with farm_processes(workdir / database, processes, mongo_url, database, engine, log_level) as farms:
            started = time.monotonic()
            sent = await drive([f.url for f in farms], customers, messages)
            await wait_until_done(store, messages, timeout)
            seconds = time.monotonic() - started
        verified = await verify(store, sent) if engine == "echo" else {"problems": []}
        return RunResult(processes, messages, customers, seconds, verified)
    finally:
        if store._client is not None:
            await store._client.drop_database(database)
        await store.close()


async def _bench(args: argparse.Namespace) -> int:
    import tempfile

    results = []
    with tempfile.TemporaryDirectory(prefix="scale-out-") as scratch, contextlib.ExitStack() as stack:
        tmp = args.workdir or scratch
        url = args.mongodb_url
        if url is None:
            from tests.store.mongo_server import secantus_server, with_options

            url = with_options(stack.enter_context(secantus_server(Path(tmp) / "db")), retryWrites="false")
        for count in args.processes:
            result = await run_once(Path(tmp), url, processes=count, messages=args.messages,
                                    customers=args.customers, engine=args.engine, log_level=args.log_level)
            results.append(result.as_dict())
            print(json.dumps(result.as_dict()), flush=True)
    report = {"server": "MONGODB_URL" if args.mongodb_url else "SecantusDB 0.7.0b3 (not MongoDB; see docstring)",
              "engine": args.engine, "runs": results}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 1 if any(r["problem_count"] for r in results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run one farm process with the echo engine (used by the harness)")
    serve.add_argument("--config", required=True)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--mongodb-url", default=os.environ.get("MONGODB_URL"))
    parser.add_argument("--engine", choices=["echo", "project"], default="echo")
    parser.add_argument("--workdir", help="keep farm configs and logs (farmN.log) here")
    parser.add_argument("--log-level", default="warning", help="farm processes' log level")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale_out.json"))
    args = parser.parse_args(argv)
    if args.command == "serve":
        _serve_with_echo_engine(args.config)
        return 0
    return asyncio.run(_bench(args))


if __name__ == "__main__":
    sys.exit(main())
