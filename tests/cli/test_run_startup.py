"""`switchboard run` as a newcomer meets it: a start-up failure is one line that says what to do,
and a farm.yml works the same from any working directory."""

from __future__ import annotations

import fcntl
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.wait import eventually_sync

REPO = Path(__file__).resolve().parents[2]
MOODBOT = REPO / "tests" / "rasa_projects" / "moodbot"
COMMAND = [sys.executable, "-c", "from core.cli import main; main()"]  # what the `switchboard` script runs


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    """A farm.yml in its own folder, with relative paths only; returns the farm.yml."""
    config_dir = tmp_path / "deploy" / "config"
    shutil.copytree(MOODBOT, config_dir / "mood", ignore=shutil.ignore_patterns(".switchboard-models"))
    path = config_dir / "farm.yml"
    path.write_text("store:\n  path: ../data/farm.db\ndesk:\n  web: {enabled: false}\nbots:\n  mood:\n    project: mood\n",
                    encoding="utf-8")
    return path


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def switchboard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_a_busy_port_is_one_line_that_says_what_to_do(deployment: Path, elsewhere: Path, held_port: int) -> None:
    done = switchboard("run", "--config", str(deployment), "--port", str(held_port), cwd=elsewhere)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"cannot start: port {held_port} on 127.0.0.1 is in use — stop the other process or pass --port")
    assert done.stdout == ""


def test_a_host_that_is_not_this_machine_is_one_line(deployment: Path, elsewhere: Path) -> None:
    done = switchboard("run", "--config", str(deployment), "--host", "192.0.2.1", "--port", "0", cwd=elsewhere)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "cannot start: 192.0.2.1 is not an address of this machine — pass --host 127.0.0.1 (or 0.0.0.0 for every interface)")


def test_a_database_held_by_another_farm_is_one_line_naming_the_file_from_farm_yml(
    deployment: Path, elsewhere: Path,
) -> None:
    database = deployment.parent.parent / "data" / "farm.db"
    database.parent.mkdir()
    with open(f"{database}.lock", "wb") as lock:  # what a running farm on this file holds
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        done = switchboard("run", "--config", str(deployment), "--port", "0", cwd=elsewhere)
    assert done.returncode == 1
    problems = [line for line in done.stderr.splitlines() if not line.startswith("20")]  # log lines start with the time
    assert len(problems) == 1, done.stderr
    assert problems[0].startswith(f"cannot start: {database} is already served by another farm process")
    assert "stop the other one" in problems[0]
    assert "Traceback" not in done.stderr


def test_an_out_of_range_port_is_a_usage_error(deployment: Path, elsewhere: Path) -> None:
    done = switchboard("run", "--config", str(deployment), "--port", "70000", cwd=elsewhere)
    assert done.returncode == 2
    assert "Usage: switchboard run" in done.stderr and "65535" in done.stderr and "Traceback" not in done.stderr


def test_an_unknown_log_level_in_the_environment_is_one_line(deployment: Path, elsewhere: Path) -> None:
    done = subprocess.run([*COMMAND, "run", "--config", str(deployment), "--port", "0"], cwd=elsewhere,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={"PATH": "/usr/bin:/bin", "SWITCHBOARD_LOG_LEVEL": "verbose"})
    assert done.returncode == 2
    assert done.stderr.strip() == ("config error: environment variable SWITCHBOARD_LOG_LEVEL: Input should be "
                                   "'debug', 'info', 'warning', 'error' or 'critical', not 'verbose'")


def test_the_farm_started_from_another_directory_uses_the_database_next_to_farm_yml(
    deployment: Path, elsewhere: Path, tmp_path: Path,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    farm = subprocess.Popen([*COMMAND, "run", "--config", str(deployment), "--port", str(port)], cwd=elsewhere,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def healthy() -> bool:
            assert farm.poll() is None, farm.communicate()[1]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        eventually_sync(healthy, timeout=90, message="the farm did not answer /healthz in 90 s")
    finally:
        farm.send_signal(signal.SIGTERM)
        _, stderr = farm.communicate(timeout=60)
    assert farm.returncode == 0, stderr
    assert sorted(tmp_path.rglob("*.db")) == [deployment.parent.parent / "data" / "farm.db"]
    assert not any(elsewhere.iterdir())
