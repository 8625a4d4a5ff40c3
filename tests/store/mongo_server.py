"""A MongoDB wire-protocol server for tests: SecantusDB as a subprocess, or ``MONGODB_URL``.

Import the fixtures from any test folder's conftest::

    from tests.store.mongo_server import mongo_url, mongo_database  # noqa: F401

``mongo_url`` is session-scoped (one server per test run); ``mongo_database`` is a
fresh database name per test, dropped afterwards. `secantus_server` starts a
separate server for tests that write a lot (SecantusDB slows down after about
10,000 retryable writes, see docs/mongodb.md).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
START_TIMEOUT = 30.0


def secantus_binary() -> str | None:
    """The ``secantusd-py`` console script of this interpreter's environment, else from PATH."""
    local = Path(sys.executable).parent / "secantusd-py"
    if local.exists():
        return str(local)
    return shutil.which("secantusd-py")


@contextmanager
def secantus_server(storage: Path | None = None, *, log_level: str = "INFO") -> Iterator[str]:
    """Run SecantusDB on a free port of 127.0.0.1; yield its ``mongodb://`` URL; SIGTERM on exit."""
    binary = secantus_binary()
    if binary is None:
        raise RuntimeError("secantusd-py not found: install the test extra (pip install -e '.[test]') or set MONGODB_URL")
    owned_dir = storage is None
    directory = Path(tempfile.mkdtemp(prefix="secantus-")) if storage is None else storage
    directory.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [binary, "--host", "127.0.0.1", "--port", "0", "--storage-path", str(directory), "--log-level", log_level],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = _wait_for_port(process)
        # Keep draining stderr so the server never blocks on a full pipe.
        threading.Thread(target=_drain, args=(process,), daemon=True).start()
        yield f"mongodb://127.0.0.1:{port}/?directConnection=true"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if owned_dir:
            shutil.rmtree(directory, ignore_errors=True)


def _wait_for_port(process: subprocess.Popen[str]) -> int:
    assert process.stderr is not None
    deadline = time.monotonic() + START_TIMEOUT
    seen: list[str] = []
    result: list[int] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            seen.append(line)
            match = _LISTENING.search(line)
            if match:
                result.append(int(match.group(1)))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=max(0.0, deadline - time.monotonic()))
    if not result:
        process.kill()
        raise RuntimeError(f"SecantusDB did not report its port within {START_TIMEOUT} s: {''.join(seen)[-2000:]}")
    return result[0]


def _drain(process: subprocess.Popen[str]) -> None:
    assert process.stderr is not None
    for _ in process.stderr:
        pass


def with_options(url: str, **options: str) -> str:
    """``url`` with extra query options, e.g. ``with_options(url, retryWrites="false")``."""
    extra = "&".join(f"{k}={v}" for k, v in options.items())
    return f"{url}{'&' if '?' in url else '/?'}{extra}" if extra else url


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the test MongoDB: ``MONGODB_URL`` if set, else a SecantusDB started for this session."""
    external = os.environ.get("MONGODB_URL")
    if external:
        yield external
        return
    try:
        with secantus_server(tmp_path_factory.mktemp("secantus")) as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def farm_mongo_url(tmp_path: Path) -> Iterator[str]:
    """A server of its own for farm processes (they write a lot), without retryable writes
    (SecantusDB slows down with them); ``MONGODB_URL`` if set."""
    external = os.environ.get("MONGODB_URL")
    if external:
        yield external
        return
    with secantus_server(tmp_path / "db") as url:
        yield with_options(url, retryWrites="false")


@pytest.fixture
def mongo_database(mongo_url: str) -> Iterator[str]:
    """A fresh database name for one test; dropped afterwards."""
    name = f"sb_test_{uuid.uuid4().hex[:12]}"
    yield name
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]] = MongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(name)
    finally:
        client.close()
