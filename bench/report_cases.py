"""``switchboard report`` over many cases on SQLite: how long it takes and how much memory it needs.

    python -m bench.report_cases                      # 1,000,000 cases over 90 days, 2 bots
    python -m bench.report_cases --cases 100000 --by day,agent

1. Builds a fresh SQLite store (the real migrations) and fills its ``cases`` table with
   generated cases in bulk: 60 % solved by the bot, handoffs by reason, claims, replies,
   closes, ratings, two channels, three languages, 20 agents, 12 intents; then their daily
   aggregates (``case_days``) as `record_case` would have added them.
2. Measures the write side too: ``--updates`` incremental `record_case` calls through the
   store (one per customer turn in the farm), per second.
3. Runs ``switchboard report --format json`` (the real CLI, in its own process) once per
   grouping and reports wall time and the process's peak RSS (``ru_maxrss`` of the child).

Results go to ``bench/results/report_cases.json`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from core.store.ports.analytics import CaseUpdate
from core.store.sqlite import SQLiteStore

REPO = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-c", "from core.cli import main; main()"]
REASONS = (("requested", 0.45), ("fallback", 0.25), ("frustration", 0.15), ("intent", 0.1), ("action", 0.05))
INTENTS = ("order_status", "pricing", "opening_hours", "password_reset", "invoice_question", "server_down",
           "cancel_contract", "complaint", "greet", "delivery_time", "refund", "change_address")
COLUMNS = ("conversation_id", "n", "bot", "day", "started_at", "last_customer_at", "expires_at", "channel", "language",
           "intent", "handoff_at", "handoff_reason", "handoff_intent", "claimed_at", "agent", "first_reply_at",
           "ended_at", "closed_at", "csat", "fallbacks", "frustration_peaks", "dead_letters", "customer_messages",
           "bot_messages", "agent_messages")


def _reason(rng: random.Random) -> str:
    pick, total = rng.random(), 0.0
    for reason, share in REASONS:
        total += share
        if pick < total:
            return reason
    return REASONS[-1][0]


def generate(path: Path, cases: int, days: int, seed: int = 17) -> None:
    """Fill ``path``'s cases table with ``cases`` generated cases over the last ``days`` days."""
    rng = random.Random(seed)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = (end - timedelta(days=days)).timestamp()
    span = days * 86400.0
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    rows: list[tuple[Any, ...]] = []
    sql = f"INSERT INTO cases ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    for i in range(cases):
        at = start + rng.random() * span
        bot = "shop" if i % 3 else "hosting"
        intent = rng.choice(INTENTS)
        customer = rng.randint(1, 8)
        fallbacks = 1 if rng.random() < 0.12 else 0
        handed = rng.random() < 0.4
        row: dict[str, Any] = dict.fromkeys(COLUMNS)
        row.update(conversation_id=f"conv_{i:08d}", n=1, bot=bot,
                   day=datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d"), started_at=at,
                   last_customer_at=at + customer * 30, expires_at=at + customer * 30 + 3600,
                   channel="telegram" if rng.random() < 0.55 else "whatsapp",
                   language=rng.choice(("de", "de", "en", "tr")), intent=intent, fallbacks=fallbacks,
                   frustration_peaks=1 if rng.random() < 0.05 else 0, dead_letters=1 if rng.random() < 0.001 else 0,
                   customer_messages=customer, bot_messages=customer + 1, agent_messages=0)
        if handed:
            handoff = at + rng.randint(10, 120)
            reason = _reason(rng)
            row.update(handoff_at=handoff, handoff_reason=reason, handoff_intent=intent)
            if rng.random() < 0.9:
                claimed = handoff + rng.expovariate(1 / 180)
                reply = claimed + rng.expovariate(1 / 40)
                ended = reply + rng.expovariate(1 / 420)
                row.update(claimed_at=claimed, agent=f"web:agent{rng.randint(1, 20):02d}", first_reply_at=reply,
                           ended_at=ended, closed_at=ended, agent_messages=rng.randint(1, 6))
                if rng.random() < 0.35:
                    row["csat"] = rng.choices((1, 2, 3, 4, 5), weights=(5, 7, 13, 30, 45))[0]
        rows.append(tuple(row[c] for c in COLUMNS))
        if len(rows) >= 50_000:
            db.executemany(sql, rows)
            db.commit()
            rows.clear()
    if rows:
        db.executemany(sql, rows)
        db.commit()
    backfill_days(db)
    db.execute("ANALYZE")
    db.commit()
    db.close()


def backfill_days(db: sqlite3.Connection) -> None:
    """The daily aggregates of the generated cases, as `record_case` would have added them one by one."""
    group = "bot, day, COALESCE(channel, '')"
    sums = {"cases": "COUNT(*)", "with_fallback": "SUM(fallbacks>0)", "claimed": "SUM(claimed_at IS NOT NULL)",
            "closed": "SUM(closed_at IS NOT NULL)",
            **{name: f"SUM({name})" for name in ("fallbacks", "frustration_peaks", "dead_letters",
                                                 "customer_messages", "bot_messages", "agent_messages")}}
    for name, expression in sums.items():
        db.execute(f"INSERT INTO case_days SELECT {group}, '{name}', {expression} FROM cases GROUP BY {group}"
                   f" HAVING {expression} > 0")
    for column, prefix in (("handoff_reason", "handoffs:"), ("csat", "csat:")):
        db.execute(f"INSERT INTO case_days SELECT {group}, '{prefix}' || {column}, COUNT(*) FROM cases"
                   f" WHERE {column} IS NOT NULL GROUP BY {group}, {column}")
    db.commit()


async def record_rate(path: Path, updates: int) -> float:
    """Incremental case updates per second through the store (customer turns on 1,000 conversations)."""
    store = SQLiteStore(path)
    await store.open()
    try:
        now = datetime.now(UTC)
        started = time.perf_counter()
        batch = []
        for i in range(updates):
            batch.append(store.record_case(CaseUpdate(
                bot="shop", conversation_id=f"live_{i % 1000}", at=now + timedelta(milliseconds=i), opens=True,
                channel="telegram", language="de", intent="pricing", customer_messages=1, bot_messages=1,
                fallbacks=1 if i % 9 == 0 else 0)))
            if len(batch) >= 100:  # as 100 conversations' turns commit at once in the farm
                await asyncio.gather(*batch)
                batch.clear()
        await asyncio.gather(*batch)
        return updates / (time.perf_counter() - started)
    finally:
        await store.close()


# Runs its arguments as a child and prints the child's peak RSS (KiB): one measurement per report.
_MEASURE = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
            " sys.stderr.write(done.stderr); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
            " print(done.stdout, end=''); sys.exit(done.returncode)")


def run_report(config: Path, by: str | None) -> dict[str, Any]:
    """One ``switchboard report`` in its own process: wall seconds, its peak RSS, the case count."""
    args = [*COMMAND, "report", "--config", str(config), "--format", "json", *(["--by", by] if by else [])]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _MEASURE, *args], capture_output=True, text=True, check=True,
                          timeout=900)
    seconds = time.perf_counter() - started
    peak_kib, _, output = done.stdout.partition("\n")
    report = json.loads(output)
    return {"by": by or "-", "seconds": round(seconds, 2), "peak_rss_mib": round(int(peak_kib) / 1024, 1),
            "cases": sum(bot["cases"] for bot in report["bots"].values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--by", default="-,week,channel,agent",
                        help="groupings to time, comma-separated ('-' = none); day, week and channel are read from "
                             "the daily aggregates, language, agent and intent from the cases")
    parser.add_argument("--updates", type=int, default=20_000, help="incremental record_case calls to time")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "report_cases.json")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sb-report-bench-") as tmp:
        folder = Path(tmp)
        db = folder / "switchboard.db"
        asyncio.run(_migrate(db))
        started = time.perf_counter()
        generate(db, options.cases, options.days)
        generated = time.perf_counter() - started
        rate = asyncio.run(record_rate(db, options.updates))
        config = folder / "farm.yml"
        project = str(REPO / "config" / "demo")
        config.write_text(yaml.safe_dump({
            "store": {"kind": "sqlite", "path": str(db)},
            "bots": {"shop": {"project": project}, "hosting": {"project": project}},
        }), encoding="utf-8")
        runs = [run_report(config, None if by == "-" else by) for by in options.by.split(",")]
        size_mib = db.stat().st_size / 2**20
    load = os.getloadavg()[0]
    result = {"cases": options.cases, "load_average_1min": round(load, 1), "cpus": os.cpu_count(), "days": options.days, "generate_seconds": round(generated, 1),
              "db_mib": round(size_mib, 1), "record_case_per_second": round(rate), "reports": runs,
              "command": " ".join(["python -m bench.report_cases", *sys.argv[1:]])}
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{options.cases:,} cases over {options.days} days, SQLite file {size_mib:.0f} MiB "
          f"(generated in {generated:.0f} s); record_case: {rate:,.0f} updates/s; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"{'--by':<8} {'seconds':>8} {'peak RSS MiB':>13} {'cases':>10}")
    for run in runs:
        print(f"{run['by']:<8} {run['seconds']:>8} {run['peak_rss_mib']:>13} {run['cases']:>10,}")


async def _migrate(path: Path) -> None:
    store = SQLiteStore(path)
    await store.open()
    await store.close()


if __name__ == "__main__":
    main()
