"""`core.deadlines.Deadlines`: timeouts on one shared timer behave like ``asyncio.timeout``."""

from __future__ import annotations

import asyncio

import pytest

from core.deadlines import Deadlines
from tests.support.wait import eventually


async def hang() -> None:
    """Work that never finishes on its own (an action or a send that hangs)."""
    await asyncio.Event().wait()


async def test_an_overrun_raises_timeout_error_and_the_task_goes_on() -> None:
    deadlines = Deadlines(resolution=0.02)
    with pytest.raises(TimeoutError):
        async with deadlines.within(0.05):
            await hang()
    # no cancellation left over for the task: none pending, and no scope the watchdog could cancel again
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    assert not deadlines._scopes
    async with deadlines.within(5):
        await asyncio.sleep(0)
    await deadlines.close()


async def test_an_outside_cancellation_stays_a_cancellation() -> None:
    deadlines = Deadlines(resolution=0.02)

    async def work() -> None:
        async with deadlines.within(5):
            await hang()

    task = asyncio.create_task(work())
    await eventually(lambda: deadlines._scopes)  # the work is inside its scope
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await deadlines.close()


async def test_the_plain_with_form_times_out_like_the_async_one() -> None:
    deadlines = Deadlines(resolution=0.02)
    with pytest.raises(TimeoutError), deadlines.within(0.05):
        await hang()
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    assert not deadlines._scopes
    await deadlines.close()
