"""`core.deadlines.Deadlines`: timeouts on one shared timer behave like ``asyncio.timeout``."""

from __future__ import annotations

import asyncio

import pytest

from core.deadlines import Deadlines


async def test_an_overrun_raises_timeout_error_and_the_task_goes_on() -> None:
    deadlines = Deadlines(resolution=0.02)
    with pytest.raises(TimeoutError):
        async with deadlines.within(0.05):
            await asyncio.sleep(5)
    await asyncio.sleep(0.05)  # no cancellation left over for the task
    async with deadlines.within(5):
        await asyncio.sleep(0.01)
    await deadlines.close()


async def test_an_outside_cancellation_stays_a_cancellation() -> None:
    deadlines = Deadlines(resolution=0.02)

    async def work() -> None:
        async with deadlines.within(5):
            await asyncio.sleep(5)

    task = asyncio.create_task(work())
    await asyncio.sleep(0.03)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await deadlines.close()
