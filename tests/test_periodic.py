"""`core.periodic.Periodic`: the farm services' background jobs run on their interval, survive a
crashing step (logged and counted) and stop when told."""

from __future__ import annotations

import asyncio

import pytest

from core import metrics
from core.periodic import Periodic
from tests.support.wait import eventually


async def test_a_job_runs_at_once_then_on_its_interval_until_stopped() -> None:
    steps: list[int] = []

    async def step() -> None:
        steps.append(len(steps))

    job = Periodic("test-job", 0.01, step)
    await job.start()
    await job.start()  # idempotent: still one task
    try:
        await eventually(lambda: len(steps) >= 3)
    finally:
        await job.stop()
    assert not job.running
    done = len(steps)
    await asyncio.sleep(0)  # the loop turns once: a stopped job takes no further step
    assert len(steps) == done and steps == list(range(done))


async def test_a_job_may_wait_one_interval_before_its_first_step() -> None:
    started = asyncio.Event()

    async def step() -> None:
        started.set()

    job = Periodic("test-late-job", 60.0, step, first="after_interval")
    await job.start()
    try:
        await asyncio.sleep(0)
        assert job.running and not started.is_set()
    finally:
        await job.stop()


async def test_a_crashing_step_is_counted_and_the_job_goes_on() -> None:
    calls: list[str] = []

    async def step() -> None:
        calls.append("step")
        if len(calls) == 1:
            raise RuntimeError("a bug in a background job")

    before = metrics.REGISTRY.get_sample_value("switchboard_errors_total", {"component": "test-crashing-job"}) or 0
    job = Periodic("test-crashing-job", 0.01, step)
    await job.start()
    try:
        await eventually(lambda: len(calls) >= 2)
    finally:
        await job.stop()
    assert metrics.REGISTRY.get_sample_value("switchboard_errors_total", {"component": "test-crashing-job"}) == before + 1


def test_first_is_now_or_after_an_interval() -> None:
    with pytest.raises(ValueError, match="first"):
        Periodic("bad", 1.0, lambda: asyncio.sleep(0), first="later")
