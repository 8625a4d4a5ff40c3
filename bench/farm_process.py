"""Serve a farm in this process, with a chosen engine, until SIGTERM/SIGINT (then drain and stop).

    python -m bench.farm_process --config farm.yml [--engine echo|project]

``echo`` uses the deterministic `EchoEngine` of the test support (the pipeline,
store and adapters are measured, not NLU); ``project`` loads each bot's configured
Rasa project like ``switchboard run`` does. ``SWITCHBOARD_BENCH_WITHOUT`` (comma-separated:
``receipts``, ``privacy``, ``analytics``, ``review``) leaves features out, to measure what each costs. Used by the benchmark and by the
reliability tests that kill the farm with SIGKILL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core import logging as sb_logging
from core.config import load_farm_config
from core.engine import Engine
from core.farm import Farm, farm_plugins, serve
from core.pipeline.channels import ChannelRegistry


class SlowEngine:
    """An engine that takes ``delay`` seconds per turn (graceful-shutdown tests)."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner = inner
        self.delay = delay

    async def handle(self, turn: Any) -> Any:
        await asyncio.sleep(self.delay)
        return await self.inner.handle(turn)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def run(config_path: Path, engine: str, delay: float = 0.0) -> None:
    config = load_farm_config(config_path)
    sb_logging.configure(config.log_level, config.log_format)
    if os.environ.get("SWITCHBOARD_BENCH_NO_TYPING"):  # measure what the typing indicators cost
        async def no_typing(self: ChannelRegistry, message: Any) -> None:
            return None

        ChannelRegistry.typing = no_typing  # type: ignore[method-assign]
    engines: dict[str, Engine] = {}
    if engine == "echo":
        from tests.support.engines import EchoEngine

        engines = {bot: EchoEngine() for bot in config.bots}
        if delay > 0:
            engines = {bot: SlowEngine(e, delay) for bot, e in engines.items()}
    # What each feature costs (`bench.run --engines echo+no-receipts+no-analytics`, ...): the
    # built-in plugins named here are left out, "receipts" turns WhatsApp's read receipts off.
    without = {name for name in os.environ.get("SWITCHBOARD_BENCH_WITHOUT", "").split(",") if name}
    if "receipts" in without:
        for bot in config.bots.values():
            if "whatsapp" in bot.channels:
                bot.channels["whatsapp"]["read_receipts"] = False
    plugins = [p for p in farm_plugins(config) if p.name not in without] if without - {"receipts"} else None
    farm = Farm(config, engines=engines, plugins=plugins)
    runner = await serve(farm, config.server.host, config.server.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {config.server.host}:{config.server.port}", flush=True)
    await stop.wait()
    await runner.cleanup()
    await farm.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--engine", choices=("echo", "project"), default="echo")
    parser.add_argument("--engine-delay", type=float, default=0.0, help="echo: seconds per turn")
    args = parser.parse_args(argv)
    profile = os.environ.get("SWITCHBOARD_BENCH_PROFILE")  # a path: write cProfile stats there
    if profile:
        import cProfile

        cProfile.runctx("asyncio.run(run(args.config, args.engine, args.engine_delay))", globals(),
                        {"args": args, "run": run}, filename=profile)
        return
    asyncio.run(run(args.config, args.engine, args.engine_delay))


if __name__ == "__main__":
    main()
