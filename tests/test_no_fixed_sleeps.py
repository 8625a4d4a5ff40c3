"""No test waits for the wall clock: expiry is reached with `FakeClock.advance`, background work
is awaited by its result (`tests.support.wait.eventually`) or an event.

Every ``asyncio.sleep`` with anything but a literal 0 (which only yields to the loop) and every
``time.sleep`` under ``tests/`` fails this test, except in the few places listed in `ALLOWED`,
each with the reason it is not a wait for time to pass.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# (file under tests/, enclosing function as Class.method or function) -> why it may sleep.
ALLOWED: dict[tuple[str, str], str] = {
    ("support/wait.py", "eventually"): "the polling helper itself: a few ms between checks of the condition",
    ("support/wait.py", "eventually_sync"): "the same outside the event loop (a subprocess's health check)",
    ("fakes/telegram_api.py", "FakeTelegramAPI._handle"): "a hung Bot API: the request hangs until the client's timeout",
    ("fakes/whatsapp_api.py", "FakeWhatsAppAPI._messages"): "a hung Graph API: the request hangs until the client's timeout",
    ("reliability/test_outbox_sender.py", "SlowChannel.send"): "a slow platform: each send takes `delay` seconds",
    ("reliability/support.py", "post_until_acked"): "the platform's own retry cadence for a webhook it could not deliver",
    ("reliability/test_platform_outage.py", "outage"): (
        "the fault scenario: a platform outage of OUTAGE_SECONDS in three phases (as bench.faults runs it)"
    ),
    ("reliability/test_platform_outage.py", "test_api_outage_then_recovery_delivers_every_reply_once_in_order"): (
        "customers keep writing at a human pace for as long as the outage lasts"
    ),
}


def _is_zero(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and not isinstance(node.value, bool) and node.value == 0


def _sleep_kind(call: ast.Call, asyncio_sleep_names: set[str], time_sleep_names: set[str]) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "sleep" and isinstance(func.value, ast.Name):
        if func.value.id == "asyncio":
            return "asyncio.sleep"
        if func.value.id == "time":
            return "time.sleep"
    if isinstance(func, ast.Name):
        if func.id in asyncio_sleep_names:
            return "asyncio.sleep"
        if func.id in time_sleep_names:
            return "time.sleep"
    return None


def fixed_sleeps(path: Path) -> Iterator[tuple[str, int, str]]:
    """(enclosing function, line, source) of every sleep in ``path`` that waits for time."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    asyncio_sleep_names, time_sleep_names = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("asyncio", "time"):
            for alias in node.names:
                if alias.name == "sleep":
                    names = asyncio_sleep_names if node.module == "asyncio" else time_sleep_names
                    names.add(alias.asname or alias.name)

    def visit(node: ast.AST, scope: list[str]) -> Iterator[tuple[str, int, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                yield from visit(child, [*scope, child.name])
                continue
            if isinstance(child, ast.Call):
                kind = _sleep_kind(child, asyncio_sleep_names, time_sleep_names)
                if kind == "time.sleep" or (
                    kind == "asyncio.sleep" and not (len(child.args) == 1 and _is_zero(child.args[0]))
                ):
                    yield ".".join(scope) or "<module>", child.lineno, ast.unparse(child)
            yield from visit(child, scope)

    yield from visit(tree, [])


@functools.cache
def every_sleep() -> list[tuple[str, str, int, str]]:
    """(file under tests/, scope, line, source) of every sleep in the test tree."""
    return [
        (path.relative_to(TESTS).as_posix(), scope, line, source)
        for path in sorted(TESTS.rglob("*.py"))
        for scope, line, source in fixed_sleeps(path)
    ]


def test_no_test_sleeps_to_wait_for_time() -> None:
    found = [
        f"tests/{relative}:{line} in {scope}: {source}"
        for relative, scope, line, source in every_sleep()
        if (relative, scope) not in ALLOWED
    ]
    assert not found, (
        "fixed sleeps in tests: advance a FakeClock (tests/support/clock.py) for expiry, await "
        "tests.support.wait.eventually(...) or an event for background work, or (for a fake that "
        "simulates a slow platform) add the place to ALLOWED with the reason:\n" + "\n".join(found)
    )


def test_every_allowed_sleep_still_exists() -> None:
    """An entry whose sleep is gone is removed, so the list stays the list of real exceptions."""
    present = {(relative, scope) for relative, scope, _, _ in every_sleep()}
    assert set(ALLOWED) <= present, sorted(set(ALLOWED) - present)


def test_the_scan_finds_the_sleeps_it_forbids(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import asyncio, time\n"
        "from asyncio import sleep as nap\n"
        "async def waits(delay):\n"
        "    await asyncio.sleep(0.35)\n"
        "    await nap(delay)\n"
        "    time.sleep(1)\n"
        "    await asyncio.sleep(0)\n",
        encoding="utf-8",
    )
    assert [(scope, line) for scope, line, _ in fixed_sleeps(sample)] == [("waits", 4), ("waits", 5), ("waits", 6)]
