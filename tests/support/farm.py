"""Start a whole farm in-process for integration tests, on a real SQLite file and a free port.

    async with running_farm(tmp_path, bots={"demo": {...}}) as farm:
        url = farm.url            # http://127.0.0.1:PORT
        await farm.farm.settle()  # wait until every message is processed and sent

Bots default to the demo project (config/demo) with the web chat channel.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from core.config import FarmConfig, load_farm_config
from core.engine import Engine
from core.farm import Farm
from core.plugins import Plugin
from core.store.base import Store

REPO = Path(__file__).resolve().parents[2]
DEMO_PROJECT = REPO / "config" / "demo"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningFarm:
    farm: Farm
    url: str
    config: FarmConfig
    config_path: Path
    db_path: Path

    @property
    def store(self) -> Store:
        assert self.farm.store is not None
        return self.farm.store


def write_config(
    tmp_path: Path,
    *,
    bots: Mapping[str, Any] | None = None,
    desk: Mapping[str, Any] | None = None,
    store: Mapping[str, Any] | None = None,
    delivery: Mapping[str, Any] | None = None,
    port: int | None = None,
) -> Path:
    db_path = tmp_path / "switchboard.db"
    config = {
        "server": {"host": "127.0.0.1", "port": port or free_port()},
        "store": dict(store or {"kind": "sqlite", "path": str(db_path)}),
        "delivery": dict(delivery or {"poll_interval": 0.05, "backoff_initial": 0.05, "backoff_max": 1.0}),
        "desk": dict(desk or {}),
        "bots": dict(bots or {"demo": {"project": str(DEMO_PROJECT), "languages": ["de", "en"],
                                       "default_language": "de", "channels": {"webchat": {}}}}),
        "log_level": "warning",
    }
    path = tmp_path / "farm.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def running_farm(
    tmp_path: Path,
    *,
    engines: Mapping[str, Engine] | None = None,
    store: Store | None = None,
    plugins: Callable[[FarmConfig], Sequence[Plugin]] | None = None,
    **config_kwargs: Any,
) -> AsyncIterator[RunningFarm]:
    """A farm serving on 127.0.0.1; ``plugins`` (from the config): instead of the built-in ones."""
    path = write_config(tmp_path, **config_kwargs)
    config = load_farm_config(path)
    farm = Farm(config, store=store, engines=dict(engines or {}), plugins=plugins(config) if plugins else None)
    app = await farm.start()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.server.host, config.server.port)
    await site.start()
    try:
        yield RunningFarm(farm, f"http://{config.server.host}:{config.server.port}", config, path,
                          Path(config.store.path))
    finally:
        await runner.cleanup()
        await farm.stop()
