"""The real rasa-sdk action server in a subprocess, on a free local port, for tests."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support.farm import free_port
from tests.support.wait import eventually_sync


@contextmanager
def rasa_sdk_server(cwd: Path, command: Sequence[str], *, pythonpath: Path, timeout: float = 30.0) -> Iterator[str]:
    """Run ``python <command...> <port>`` (``{port}`` in ``command`` is replaced) and yield its webhook URL once healthy."""
    port = free_port()
    args = [a.replace("{port}", str(port)) for a in command]
    process = subprocess.Popen([sys.executable, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(pythonpath)})
    try:
        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                    return response.status == 200
            except OSError:
                if process.poll() is not None:
                    error = process.stderr.read().decode() if process.stderr else ""
                    raise RuntimeError(f"action server did not start: {error}") from None
                return False

        eventually_sync(healthy, timeout=timeout, message="action server did not start")
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
