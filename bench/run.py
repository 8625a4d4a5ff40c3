"""The benchmark: the farm against a bare aiohttp baseline, same fakes, same load, one machine.

    python -m bench.run [--duration 10] [--customers 100] [--quick] [--engines echo,project]
                        [--rss-conversations 100000] [--out bench/results/bench.json]

Phases (each farm in its own process, started and stopped by PID; all on 127.0.0.1):
1. baseline: `bench.baseline` (webhook in → one POST to the fake API), closed loop → peak msgs/s.
2. farm/<engine>: `bench.farm_process` on a fresh SQLite file; closed loop → peak msgs/s
   (webhook sent → reply arrived at the fake API), CPU and peak RSS of the farm process;
   then an open loop at half that peak → p50/p99 latency.
3. rss: a store seeded with ``--rss-conversations`` conversations, the farm started on it
   and driven for a while (existing and new customers) → peak RSS.
Results go to ``--out`` (JSON) and a short table on stdout.

``--against DIR`` (or ``SWITCHBOARD_BENCH_AGAINST``): the farm of another checkout (e.g. an export
of the commit before a change) runs too, in the same run, against the same fakes and baseline,
alternating with this one over ``--rounds``; the summary shows both side by side (medians).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil

from bench import load, procs
from bench.resources import ResourceSampler
from bench.seed import seed, seed_identity

BOT = "bench"
AGAINST = "@before"  # the farm name suffix of the --against checkout
# Engine variants that leave a feature out of this checkout's farm (`bench.farm_process`).
WITHOUT = ("no-receipts", "no-privacy", "no-analytics", "no-review")
TARGETS = {"throughput_ratio": 0.3, "p99_ms_at_half_peak": 20.0, "rss_mb_100k": 200.0}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def run_baseline(fakes: load.Fakes, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    port = procs.free_port()
    proc = await asyncio.to_thread(
        procs.start_baseline, port, fakes.telegram.url, fakes.whatsapp.url, work / "baseline.log",
        telegram_token=load.TG_TOKEN, whatsapp_phone=load.WA_PHONE, whatsapp_token=load.WA_TOKEN,
    )
    try:
        people = load.customers(args.customers, channels=args.channels)
        await load.closed_loop(fakes, proc.url, BOT, people, args.warmup, name="warmup", pause_gc=True)
        with ResourceSampler(proc.pid) as sampler, ResourceSampler(os.getpid()) as driver:
            peak = await load.closed_loop(fakes, proc.url, BOT, people, args.duration, name="baseline_peak", pause_gc=True)
        return {"peak": peak.as_dict(), "resources": sampler.result().as_dict(),
                "driver_resources": driver.result().as_dict()}
    finally:
        await asyncio.to_thread(proc.stop)


async def run_farm(fakes: load.Fakes, work: Path, args: argparse.Namespace, engine: str,
                   root: Path = ROOT, label: str = "") -> dict[str, Any]:
    """One farm (of the checkout ``root``) through the closed and the open loop."""
    directory = Path(tempfile.mkdtemp(prefix=f"farm-{engine.replace('+', '-')}{label}-", dir=work))
    config, port, _ = procs.write_farm_config(directory, load.farm_channels(fakes), bot=BOT, poll_interval=None,
                                              project=root / "config" / "demo")
    base, *variants = engine.split("+")
    env = {}
    if "no-typing" in variants:
        env["SWITCHBOARD_BENCH_NO_TYPING"] = "1"
    without = [v.removeprefix("no-") for v in variants if v in WITHOUT]
    if without:  # this checkout's farm only: an --against checkout may predate the feature
        env["SWITCHBOARD_BENCH_WITHOUT"] = ",".join(without) if root == ROOT else ""
    proc = await asyncio.to_thread(procs.start_farm, config, port, engine=base, timeout=600.0, env=env, root=root)
    out: dict[str, Any] = {"engine": engine}
    texts = load.DEMO_TEXTS if base == "project" else None
    try:
        people = load.customers(args.customers, channels=args.channels)
        started = time.perf_counter()
        with ResourceSampler(proc.pid) as whole:
            await load.closed_loop(fakes, proc.url, BOT, people, args.warmup, name="warmup", texts=texts, pause_gc=True)
            with ResourceSampler(proc.pid) as sampler, ResourceSampler(os.getpid()) as driver:
                peak = await load.closed_loop(fakes, proc.url, BOT, people, args.duration, name="farm_peak",
                                              texts=texts, pause_gc=True)
            out["peak"] = peak.as_dict()
            out["peak_resources"] = sampler.result().as_dict()
            out["driver_resources"] = driver.result().as_dict()
            rate = args.latency_rate or max(1.0, peak.throughput / 2)
            half = await load.open_loop(fakes, proc.url, BOT, people, rate, args.duration, name="farm_half_peak",
                                        texts=texts, pause_gc=True)
            out["half_peak"] = half.as_dict()
        out["resources"] = whole.result().as_dict()
        out["wall_s"] = round(time.perf_counter() - started, 1)
    finally:
        code = await asyncio.to_thread(proc.stop)
        out["exit_code"] = code
        out["db_mb"] = round(sum(p.stat().st_size for p in directory.glob("switchboard.db*")) / 2**20, 1)
    return out


async def run_rss(fakes: load.Fakes, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    directory = work / "rss"
    directory.mkdir()
    config, port, db_path = procs.write_farm_config(directory, load.farm_channels(fakes), bot=BOT, poll_interval=None)
    log(f"seeding {args.rss_conversations} conversations")
    seconds = await asyncio.to_thread(seed, db_path, args.rss_conversations, BOT)
    proc = await asyncio.to_thread(procs.start_farm, config, port, engine="echo")
    try:
        idle_rss = psutil.Process(proc.pid).memory_info().rss / 2**20
        existing = []
        for i in range(0, min(args.rss_conversations, args.customers * 50), 50):
            channel, user = seed_identity(i)
            existing.append(load.Customer(channel, user))
        people = existing + load.customers(args.customers, offset=10_000_000)
        with ResourceSampler(proc.pid) as sampler:
            traffic = await load.closed_loop(fakes, proc.url, BOT, people, args.rss_seconds, name="rss_traffic", pause_gc=True)
        usage = sampler.result()
    finally:
        await asyncio.to_thread(proc.stop)
    return {
        "conversations": args.rss_conversations,
        "seed_seconds": round(seconds, 1),
        "db_mb": round(sum(p.stat().st_size for p in directory.glob("switchboard.db*")) / 2**20, 1),
        "rss_idle_mb": round(idle_rss, 1),
        "rss_peak_mb": round(usage.rss_peak_mb, 1),
        "traffic": traffic.as_dict(),
    }


def _brief(run: dict[str, Any]) -> dict[str, Any]:
    return {"msgs_per_s": run["peak"]["throughput_msgs_per_s"], "p99_ms_at_half_peak": run["half_peak"]["latency_ms"]["p99"],
            "cpu_percent": run["peak_resources"]["cpu_percent"]}


def project_engine_available() -> bool:
    return importlib.util.find_spec("core.dialogue.engine") is not None


def table(results: dict[str, Any]) -> str:
    rows = [("run", "msgs/s", "p50 ms", "p99 ms", "CPU %", "peak RSS MB")]
    base = results.get("baseline")
    if base:
        lat = base["peak"]["latency_ms"]
        rows.append(("baseline (closed loop)", f"{base['peak']['throughput_msgs_per_s']}", f"{lat['p50']}",
                     f"{lat['p99']}", f"{base['resources']['cpu_percent']}", f"{base['resources']['rss_peak_mb']}"))
    for name, farm in results.get("farms", {}).items():
        if "peak" not in farm:
            continue
        lat = farm["peak"]["latency_ms"]
        rows.append((f"farm/{name} (closed loop)", f"{farm['peak']['throughput_msgs_per_s']}", f"{lat['p50']}",
                     f"{lat['p99']}", f"{farm['peak_resources']['cpu_percent']}",
                     f"{farm['peak_resources']['rss_peak_mb']}"))
        half = farm["half_peak"]
        rows.append((f"farm/{name} @ {half['offered_rate']}/s", f"{half['throughput_msgs_per_s']}",
                     f"{half['latency_ms']['p50']}", f"{half['latency_ms']['p99']}", "", ""))
    rss = results.get("rss")
    if rss:
        rows.append((f"farm/echo, {rss['conversations']} stored conv.", f"{rss['traffic']['throughput_msgs_per_s']}",
                     f"{rss['traffic']['latency_ms']['p50']}", f"{rss['traffic']['latency_ms']['p99']}", "",
                     f"{rss['rss_peak_mb']}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    summary = results.get("summary", {})
    lines.append("")
    for key, value in summary.items():
        if key != "side_by_side":
            lines.append(f"{key}: {value}")
    compared = summary.get("side_by_side")
    if compared:
        lines += ["", (f"side by side, medians of {compared['rounds']} round(s): before = {compared['before']}, "
                       f"after = {compared['after']}")]
        for name, row in compared["engines"].items():
            before, after = row["before"], row["after"]
            lines.append(
                f"  {name}: throughput_ratio {before.get('throughput_ratio')} -> {after.get('throughput_ratio')} | "
                f"p99_ms_at_half_peak {before['p99_ms_at_half_peak']} -> {after['p99_ms_at_half_peak']} | "
                f"msgs/s {before['msgs_per_s']} -> {after['msgs_per_s']} | "
                f"msgs_per_cpu_second {before['msgs_per_cpu_second']} -> {after['msgs_per_cpu_second']}")
    return "\n".join(lines)


def side_by_side(results: dict[str, Any]) -> dict[str, Any]:
    """With ``--against``: per engine, the other checkout's figures next to this one's (medians over
    the rounds; throughput ratios against the same, faster baseline run)."""
    rounds = results.get("farm_rounds")
    base = results.get("baseline")
    if not rounds:
        return {}
    out: dict[str, dict[str, Any]] = {}
    base_rate = max(1e-9, base["peak"]["throughput_msgs_per_s"]) if base else None
    for name in rounds:
        if name.endswith(AGAINST) or name + AGAINST not in rounds:
            continue
        row: dict[str, Any] = {}
        for label, key in (("before", name + AGAINST), ("after", name)):
            runs_ = rounds[key]
            entry: dict[str, Any] = {
                "msgs_per_s": statistics.median(r["msgs_per_s"] for r in runs_),
                "p99_ms_at_half_peak": statistics.median(r["p99_ms_at_half_peak"] for r in runs_),
                "msgs_per_cpu_second": round(statistics.median(
                    r["msgs_per_s"] / max(1e-9, r["cpu_percent"] / 100) for r in runs_), 1),
            }
            if base_rate is not None:
                entry["throughput_ratio"] = round(entry["msgs_per_s"] / base_rate, 3)
            row[label] = entry
        out[name] = row
    return {"side_by_side": {"before": results["settings"]["against"], "after": str(ROOT),
                             "rounds": results["settings"]["rounds"], "engines": out}} if out else {}


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    base = results.get("baseline")
    for name, farm in results.get("farms", {}).items():
        if "peak" not in farm:
            continue
        if base:
            ratio = farm["peak"]["throughput_msgs_per_s"] / max(1e-9, base["peak"]["throughput_msgs_per_s"])
            summary[f"throughput_ratio[{name}]"] = round(ratio, 3)
            # Messages per CPU-second of the server process: independent of whether the load
            # generator or the server saturated first (on a small machine the driver can).
            farm_eff = farm["peak"]["throughput_msgs_per_s"] / max(1e-9, farm["peak_resources"]["cpu_percent"] / 100)
            base_eff = base["peak"]["throughput_msgs_per_s"] / max(1e-9, base["resources"]["cpu_percent"] / 100)
            summary[f"msgs_per_cpu_second[{name}]"] = round(farm_eff, 1)
            summary[f"cpu_efficiency_ratio[{name}]"] = round(farm_eff / max(1e-9, base_eff), 3)
        summary[f"p99_ms_at_half_peak[{name}]"] = farm["half_peak"]["latency_ms"]["p99"]
        summary[f"duplicates_seen[{name}]"] = farm.get("duplicates", 0)
    if base:
        base_eff = base["peak"]["throughput_msgs_per_s"] / max(1e-9, base["resources"]["cpu_percent"] / 100)
        summary["baseline_runs_msgs_per_s"] = results.get("baseline_runs", [])
        summary["baseline_msgs_per_cpu_second"] = round(base_eff, 1)
        summary["driver_cpu_percent_during_baseline"] = base["driver_resources"]["cpu_percent"]
    summary.update(side_by_side(results))
    if results.get("rss"):
        summary[f"rss_peak_mb[{results['rss']['conversations']} conversations]"] = results["rss"]["rss_peak_mb"]
    summary["targets"] = TARGETS
    return summary


async def main(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "out"},
        "notes": [
            ("closed loop: each customer sends its next webhook when the reply to the previous one reached "
             "the fake API; latency = webhook sent -> reply arrived at the fake"),
            "farm send-rate limits lifted for the benchmark (fakes do not throttle)",
            "half of customers on Telegram (secret-token webhook, PTB client), half on WhatsApp (HMAC webhook)",
        ],
        "farms": {},
    }
    fakes = await load.Fakes.start()
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as tmp:
        work = Path(tmp)
        try:
            baselines = []
            if not args.skip_baseline:
                log("baseline")
                baselines.append(await run_baseline(fakes, work, args))
            trees = [("", ROOT)] + ([(AGAINST, args.against)] if args.against else [])
            rounds: dict[str, list[dict[str, Any]]] = {}
            for engine in args.engines:
                if engine == "project" and not project_engine_available():
                    results["farms"][engine] = {"skipped": "core.dialogue.engine (RasaEngine) is not available yet"}
                    continue
                for round_ in range(args.rounds if args.against else 1):
                    # alternate which checkout goes first: a drift in the machine's load hits both alike
                    for suffix, root in (trees if round_ % 2 else trees[::-1]):
                        name = engine + suffix
                        log(f"farm/{name}" + (f" (round {round_ + 1} of {args.rounds})" if args.against else ""))
                        before, unmatched = fakes.replies.duplicates(), fakes.replies.unmatched
                        run = await run_farm(fakes, work, args, engine, root, suffix.replace("@", "-"))
                        run["duplicates"] = fakes.replies.duplicates() - before
                        run["replies_beyond_the_first"] = fakes.replies.unmatched - unmatched
                        run["root"] = str(root)
                        rounds.setdefault(name, []).append(run)
            for name, runs in rounds.items():  # the run of median peak throughput stands for the checkout
                ranked = sorted(runs, key=lambda r: r["peak"]["throughput_msgs_per_s"])
                results["farms"][name] = ranked[len(ranked) // 2]
            if args.against:
                results["farm_rounds"] = {name: [_brief(r) for r in runs] for name, runs in rounds.items()}
            if baselines and args.engines:
                # Once more after the farms: a baseline that a noisy moment held back would
                # flatter the ratios; they are taken against the faster of the two runs.
                log("baseline again")
                baselines.append(await run_baseline(fakes, work, args))
            if baselines:
                results["baseline_runs"] = [b["peak"]["throughput_msgs_per_s"] for b in baselines]
                results["baseline"] = max(baselines, key=lambda b: b["peak"]["throughput_msgs_per_s"])
            if args.rss_conversations:
                log("rss")
                results["rss"] = await run_rss(fakes, work, args)
        finally:
            await fakes.stop()
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["summary"] = summarise(results)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured phase")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--engines", type=lambda s: [e for e in s.split(",") if e], default=["echo", "project"])
    parser.add_argument("--channels", type=lambda s: [c for c in s.split(",") if c],
                        default=["telegram", "whatsapp"], help="customers' channels, spread evenly")
    parser.add_argument("--rss-conversations", type=int, default=100_000)
    parser.add_argument("--rss-seconds", type=float, default=5.0)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--latency-rate", type=float, default=None,
                        help="msgs/s of the latency phase (default: half the measured peak)")
    parser.add_argument("--quick", action="store_true", help="short phases, 10k stored conversations")
    parser.add_argument("--against", type=Path, default=os.environ.get("SWITCHBOARD_BENCH_AGAINST") or None,
                        help="another checkout whose farm runs side by side with this one "
                             "(default: $SWITCHBOARD_BENCH_AGAINST)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --against: farm runs per checkout and engine, alternating (medians reported)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bench.json")
    args = parser.parse_args(argv)
    if args.against is not None:
        args.against = args.against.resolve()
        if not (args.against / "bench" / "farm_process.py").is_file():
            parser.error(f"--against {args.against}: not a Switchboard checkout (no bench/farm_process.py)")
    if args.quick:
        args.duration, args.warmup, args.rss_seconds = 3.0, 1.0, 2.0
        args.rss_conversations = min(args.rss_conversations, 10_000)
    return args


def cli(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    results = asyncio.run(main(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    print(f"\nwritten: {args.out}")
    return results


if __name__ == "__main__":
    cli()
