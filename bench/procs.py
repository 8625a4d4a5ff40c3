"""Subprocesses of the benchmark and the reliability tests: farm, baseline; started and ended by PID.

Every process listens on 127.0.0.1; `stop` sends SIGTERM (graceful drain) and, if the
process is still there after ``grace`` seconds, SIGKILL; `kill` is the crash (SIGKILL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEMO_PROJECT = ROOT / "config" / "demo"

# The fakes do not enforce platform limits; the benchmark measures the pipeline, so the
# outbox's send-rate limits are lifted (they are tested on their own in tests/reliability).
UNLIMITED = {"per_bot": 1_000_000, "per_chat": 1_000_000, "per_chat_burst": 1_000_000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_farm_config(
    directory: Path, channels: dict[str, Any], *, bot: str = "bench", port: int | None = None,
    db_path: Path | None = None, delivery: dict[str, Any] | None = None, unlimited: bool = True,
    project: Path = DEMO_PROJECT, log_level: str = "warning", poll_interval: float | None = 0.05,
) -> tuple[Path, int, Path]:
    """A farm.yml for one bot with ``channels``; returns (path, port, database path).

    ``poll_interval``: the outbox's (fault tests: short, so recovery is quick); None
    keeps the farm's default, as the benchmark measures it.
    """
    port = port or free_port()
    db_path = db_path or directory / "switchboard.db"
    settings: dict[str, Any] = {} if poll_interval is None else {"poll_interval": poll_interval}
    if unlimited:
        settings["rate_limits"] = {name: dict(UNLIMITED) for name in channels}
    settings.update(delivery or {})
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        "store": {"kind": "sqlite", "path": str(db_path)},
        "delivery": settings,
        "desk": {"web": {"enabled": False}},
        "bots": {bot: {"project": str(project), "languages": ["en"], "default_language": "en",
                       "channels": channels}},
        "log_level": log_level,
    }
    path = directory / "farm.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path, port, db_path


@dataclass
class Proc:
    """A child process we started; ended only through its own PID."""

    popen: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """Crash it: SIGKILL, no chance to drain."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, grace: float = 15.0) -> int:
        """Graceful: SIGTERM, wait ``grace`` s, then SIGKILL. Returns the exit code."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        return int(self.popen.returncode)


def wait_healthy(proc: Proc, timeout: float = 60.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"process {proc.pid} exited early:\n{proc.log_tail()}")
        try:
            with urllib.request.urlopen(f"{proc.url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"process {proc.pid} not healthy after {timeout} s:\n{proc.log_tail()}")


def spawn(args: list[str], port: int, log_path: Path, env: dict[str, str] | None = None,
          root: Path = ROOT) -> Proc:
    """``python args`` in the checkout ``root`` (its code, this interpreter)."""
    log = log_path.open("ab")
    popen = subprocess.Popen(
        [sys.executable, *args], cwd=root, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(root), **(env or {})},
    )
    log.close()
    return Proc(popen, f"http://127.0.0.1:{port}", log_path)


def start_farm(config_path: Path, port: int, *, engine: str = "echo", log_path: Path | None = None,
               timeout: float = 120.0, engine_delay: float = 0.0, env: dict[str, str] | None = None,
               root: Path = ROOT) -> Proc:
    """``python -m bench.farm_process`` on ``config_path``; returns once /healthz answers.
    ``root``: the checkout whose farm runs (another one compares two versions side by side)."""
    log_path = log_path or config_path.with_suffix(".log")
    args = ["-m", "bench.farm_process", "--config", str(config_path), "--engine", engine]
    if engine_delay:
        args += ["--engine-delay", str(engine_delay)]
    proc = spawn(args, port, log_path, env, root)
    wait_healthy(proc, timeout)
    return proc


def start_baseline(port: int, telegram_api: str, whatsapp_api: str, log_path: Path, *,
                   telegram_token: str, whatsapp_phone: str, whatsapp_token: str) -> Proc:
    proc = spawn(["-m", "bench.baseline", "--port", str(port), "--telegram-api", telegram_api,
                  "--telegram-token", telegram_token, "--whatsapp-api", whatsapp_api,
                  "--whatsapp-phone", whatsapp_phone, "--whatsapp-token", whatsapp_token], port, log_path)
    wait_healthy(proc, 30.0)
    return proc
