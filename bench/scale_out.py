"""Scale-out: web chat customers against one or two farm processes sharing one MongoDB.

    .venv/bin/python bench/scale_out.py [--messages 1000] [--customers 100] [--processes 1 2]
        [--kill-after N] [--lease-seconds S] [--mongodb-url URL] [--engine echo|project] [--out bench/results/scale_out.json]

Each customer opens a web chat socket to every process (same session) and sends its
messages one after the other, alternating between the processes, each after the
previous one was acknowledged (stored). The clock runs from the first message until
every message is processed and every reply is sent; then the run is verified: every
message processed once, each conversation's transcript and replies in order, and every
reply received by its customer exactly once and in order (the customers record every
reply frame their sockets receive, ``bench/webchat_customers.py``). A reply received
twice is a duplicate send; it is listed with the sender's record of it (``in_doubt``:
claims of it that ended without a recorded result, i.e. inside the crash window).

``--kill-after N`` kills the last process with SIGKILL once N messages are acknowledged;
the customers carry on with the other process, which takes over the dead one's leases
(outbox lease 6 s in that run, and takeover grace 6 s; turn leases 30 s). Duplicates are then allowed only
inside the crash window: each must be an item in doubt. Without a kill, none at all.

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
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp
import yaml

from bench import webchat_customers as customers_
from bench.webchat_customers import BOT, Customer
from core.model import Identity
from core.store.base import OutboxState
from core.store.mongo import MongoStore
from tests.support.engines import EchoEngine

DEMO_PROJECT = ROOT / "config" / "demo"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_farm_config(directory: Path, *, port: int, mongo_url: str, database: str,
                      project: Path = DEMO_PROJECT, log_level: str = "warning",
                      delivery: dict[str, float] | None = None) -> Path:
    """A farm.yml for one process: web chat bot ``demo`` on the shared MongoDB database."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        "store": {"kind": "mongodb", "url": mongo_url, "database": database},
        "delivery": {"poll_interval": 0.05, "backoff_initial": 0.05, "backoff_max": 1.0, **(delivery or {})},
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
                         engine: str = "echo", log_level: str = "warning",
                         delivery: dict[str, float] | None = None) -> AsyncIterator[list[FarmProcess]]:
    """``count`` farm processes on one database, each on its own free port; stopped on exit."""
    farms = []
    for n in range(count):
        port = free_port()
        config = write_farm_config(workdir / f"farm{n}", port=port, mongo_url=mongo_url, database=database,
                                   log_level=log_level, delivery=delivery)
        farms.append(FarmProcess(config, port, engine, log_path=workdir / f"farm{n}.log"))
    try:
        await asyncio.gather(*(f.start() for f in farms))
        yield farms
    finally:
        await asyncio.gather(*(f.stop() for f in farms), return_exceptions=True)


# -- customers ------------------------------------------------------------------------------

async def drive(http: aiohttp.ClientSession, urls: Sequence[str], customers: int, messages: int,
                concurrency: int = 50, on_ack: Callable[[], None] = lambda: None) -> list[Customer]:
    """``customers`` customers sending ``messages`` messages in total, at most ``concurrency`` at once.

    Their sockets stay open (to receive the replies still to come) until `finish`.
    """
    per_customer = [messages // customers + (1 if n < messages % customers else 0) for n in range(customers)]
    gate = asyncio.Semaphore(concurrency)
    everyone = [Customer() for _ in range(customers)]

    async def one(n: int) -> None:
        async with gate:
            await customers_.connect(http, urls, everyone[n])
            await customers_.send_messages(everyone[n], per_customer[n], f"c{n}", on_ack)

    try:
        await asyncio.gather(*(one(n) for n in range(customers)))
    except BaseException:
        await asyncio.gather(*(customers_.close(c) for c in everyone), return_exceptions=True)
        raise
    return everyone


async def finish(customers: list[Customer]) -> None:
    """Read every frame still on the way (`settle`), then close the sockets."""
    try:
        await asyncio.gather(*(customers_.settle(c) for c in customers))
    finally:
        await asyncio.gather(*(customers_.close(c) for c in customers), return_exceptions=True)


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


def _check_replies(who: str, customer: Customer, outbox: list[dict[str, Any]], problems: list[str],
                   duplicates: list[dict[str, Any]]) -> None:
    """The replies as the customer saw them: each outbox item received (or in the history) once, in order.

    A reply received more than once is a duplicate send; the sender's own record of it
    (``in_doubt``: claims that ended without a recorded result) goes with it into the report.
    """
    order = {d["_id"]: n for n, d in enumerate(outbox)}
    counts = customer.received_counts()
    for unknown in sorted(set(counts) - set(order)):
        problems.append(f"{who}: received frame {unknown} that is no reply in the outbox")
    for doc in outbox:
        seen = counts.get(doc["_id"], 0)
        if seen == 0 and doc["_id"] not in customer.history_ids:
            problems.append(f"{who}: reply {doc['_id']} never reached the customer")
        if seen > 1:
            duplicates.append({"customer": who, "outbound": doc["_id"], "received": seen,
                               "in_doubt": int(doc.get("in_doubt", 0))})
    first: list[int] = []
    for message_id, _ in customer.received:
        n = order.get(message_id)
        if n is not None and n not in first:
            first.append(n)
    if first != sorted(first):
        problems.append(f"{who}: replies received out of order: {first}")


async def verify(store: MongoStore, customers: Sequence[Customer]) -> dict[str, Any]:
    """Every message processed once; each conversation's transcript and replies in order;
    every reply received by the customer exactly once (duplicates listed, not counted as problems).

    Other layers may add replies (the privacy disclosure in the first answer), so each
    message must be followed by its echo before the next message, and the outbox must
    match the transcript's bot events one to one, sent in that order.
    """
    problems: list[str] = []
    duplicates: list[dict[str, Any]] = []
    replies = in_doubt = 0
    raw = store._require()  # the harness reads sent_at and in_doubt, which the contract does not list
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
        for text, texts in zip(customer.sent, answers, strict=True):
            if not any(r.endswith(f"echo: {text}") for r in texts):
                problems.append(f"{who}: {text!r} answered by {texts}")
        if await store.pending_inbox(conversation.id):
            problems.append(f"{who}: inbox items left unprocessed")
        bots = [str(e.data.get("text")) for e in events if e.type == "bot"]
        outbox = [doc async for doc in raw.outbox.find({"conversation_id": conversation.id}).sort("oseq", 1)]
        replies += len(outbox)
        in_doubt += sum(1 for d in outbox if d.get("in_doubt"))
        states = [d["state"] for d in outbox]
        if states != [OutboxState.SENT.value] * len(bots):
            problems.append(f"{who}: {len(bots)} bot events but outbox states {states}")
        if [d["outbound"]["text"] for d in outbox] != bots:
            problems.append(f"{who}: outbox order differs from the transcript")
        sent_at = [d.get("sent_at", 0) for d in outbox]
        if sent_at != sorted(sent_at):
            problems.append(f"{who}: replies sent out of order")
        _check_replies(who, customer, outbox, problems, duplicates)
    return {"customers": len(customers), "messages": sum(len(c.sent) for c in customers), "replies": replies,
            "received": sum(len(c.received) for c in customers), "duplicates": duplicates,
            "in_doubt": in_doubt, "resent": sum(c.resent for c in customers), "problems": problems}


async def outbound_results(http: aiohttp.ClientSession, farms: Sequence[FarmProcess]) -> dict[str, float]:
    """``switchboard_outbound_total`` by result, summed over the farms still running (their /metrics):
    ``in_doubt`` counts replies sent again after a takeover, ``takeover_found_sent`` takeovers whose
    grace saw the earlier sender's late "sent" land (a copy saved)."""
    totals: dict[str, float] = {}
    for farm in farms:
        if farm.process is None or farm.process.returncode is not None:
            continue  # killed: its counters died with it
        try:
            async with http.get(f"{farm.url}/metrics", timeout=aiohttp.ClientTimeout(total=10)) as r:
                text = await r.text()
        except (aiohttp.ClientError, TimeoutError):
            continue
        for line in text.splitlines():
            if line.startswith("switchboard_outbound_total{") and 'result="' in line:
                result = line.split('result="', 1)[1].split('"', 1)[0]
                totals[result] = totals.get(result, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


@dataclass
class RunResult:
    processes: int
    messages: int
    customers: int
    seconds: float
    verified: dict[str, Any]
    killed_after: int | None = None  # messages acknowledged when one process was killed with SIGKILL
    outbound: dict[str, float] | None = None  # the farms' switchboard_outbound_total by result

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def duplicates(self) -> list[dict[str, Any]]:
        return list(self.verified.get("duplicates", []))

    def as_dict(self) -> dict[str, Any]:
        duplicates = self.duplicates
        return {"processes": self.processes, "messages": self.messages, "customers": self.customers,
                "seconds": round(self.seconds, 2), "messages_per_second": round(self.per_second, 1),
                "kill9_after_acks": self.killed_after,
                "replies": self.verified.get("replies"), "frames_received": self.verified.get("received"),
                "duplicate_replies": sum(d["received"] - 1 for d in duplicates),
                "duplicates_outside_crash_window": sum(1 for d in duplicates if not d["in_doubt"]),
                "replies_in_doubt": self.verified.get("in_doubt"),
                "messages_resent_by_customers": self.verified.get("resent"),
                "sends_in_doubt": int((self.outbound or {}).get("in_doubt", 0)),
                "takeovers_found_sent": int((self.outbound or {}).get("takeover_found_sent", 0)),
                "problems": self.verified["problems"][:20], "problem_count": len(self.verified["problems"])}


async def _claimed_by(store: MongoStore, pid: int, timeout: float = 5.0) -> bool:
    """Wait (up to ``timeout``) until process ``pid`` holds a claim on a pending reply."""
    raw = store._require()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async for doc in raw.outbox.find({"state": OutboxState.PENDING.value, "lease_owner": {"$ne": None}},
                                         {"lease_owner": 1}):
            if f":{pid}:" in str(doc["lease_owner"]):  # owners are host:pid:id
                return True
        await asyncio.sleep(0.005)
    return False


KILL_DELIVERY = {"lease_seconds": 6.0, "send_timeout": 2.0}  # a killed process's claims expire in 6 s


async def run_once(workdir: Path, mongo_url: str, *, processes: int, messages: int, customers: int,
                   engine: str = "echo", timeout: float = 600.0, log_level: str = "warning",
                   kill_after: int | None = None, lease_seconds: float | None = None) -> RunResult:
    """Start ``processes`` farms on a fresh database, drive the customers, wait, verify.

    ``kill_after``: once that many messages are acknowledged, the last process is killed
    with SIGKILL (no drain) as soon as it holds a claim on a reply (in flight, no result
    recorded yet: aimed at the crash window); the customers carry on with the others.
    """
    database = f"scale_{processes}p_{uuid.uuid4().hex[:8]}"
    store = MongoStore(mongo_url, database)
    await store.open()
    delivery = dict(KILL_DELIVERY) if kill_after is not None else {}
    if lease_seconds is not None:  # the outbox lease must outlast the store's slowest write twice over
        delivery.update(lease_seconds=lease_seconds, send_timeout=min(10.0, lease_seconds / 4))
    try:
        async with farm_processes(workdir / database, processes, mongo_url, database, engine, log_level,
                                  delivery=delivery) as farms:
            acked = 0
            kill_now = asyncio.Event()

            def on_ack() -> None:
                nonlocal acked
                acked += 1
                if kill_after is not None and acked >= kill_after:
                    kill_now.set()

            async def killer() -> None:
                await kill_now.wait()
                victim = farms[-1].process
                assert victim is not None
                await _claimed_by(store, victim.pid)  # aim at the window: a reply claimed, no result yet
                victim.kill()  # SIGKILL
                await victim.wait()

            kill_task = asyncio.get_running_loop().create_task(killer())
            started = time.monotonic()
            try:
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                    sent = await drive(http, [f.url for f in farms], customers, messages, on_ack=on_ack)
                    try:
                        await wait_until_done(store, messages, timeout)
                        seconds = time.monotonic() - started
                    finally:
                        await finish(sent)
                    outbound = await outbound_results(http, farms)
            finally:
                if not kill_now.is_set():
                    kill_task.cancel()
                await asyncio.gather(kill_task, return_exceptions=True)
        frames = sum(len(c.received) for c in sent)
        repeated = sum(n - 1 for c in sent for n in c.received_counts().values() if n > 1)
        print(f"[scale-out] {seconds:.1f} s: {frames} reply frames received, {repeated} of them repeats "
              f"(as the customers saw them); sends in doubt {int(outbound.get('in_doubt', 0))}, takeovers that "
              f"found the reply sent {int(outbound.get('takeover_found_sent', 0))}; verifying against the store…",
              file=sys.stderr, flush=True)
        verified = await verify(store, sent) if engine == "echo" else {"problems": []}
        return RunResult(processes, messages, customers, seconds, verified, kill_after, outbound)
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
                                    customers=args.customers, engine=args.engine, log_level=args.log_level,
                                    kill_after=args.kill_after if count > 1 else None,
                                    lease_seconds=args.lease_seconds)
            results.append(result.as_dict())
            print(json.dumps(result.as_dict()), flush=True)
    report = {"server": "MONGODB_URL" if args.mongodb_url else "SecantusDB 0.7.0b3 (not MongoDB; see docstring)",
              "engine": args.engine, "runs": results}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2), encoding="utf-8")
    # Duplicates fail the run without a kill; with one, only those outside the crash window.
    return 1 if any(r["problem_count"] or r["duplicates_outside_crash_window"]
                    or (r["kill9_after_acks"] is None and r["duplicate_replies"]) for r in results) else 0


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
    parser.add_argument("--kill-after", type=int, default=None, metavar="N",
                        help="kill -9 the last process once N messages are acknowledged (runs with 2+ processes)")
    parser.add_argument("--lease-seconds", type=float, default=None,
                        help="delivery.lease_seconds of the farms (default 30; 6 with --kill-after)")
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
