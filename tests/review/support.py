"""Shared pieces of the review-loop tests: a writable copy of the demo project, a farm with a lead."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from core.review.service import ReviewService
from tests.handoff.handoff_support import HASHES, PASSWORDS
from tests.support.farm import DEMO_PROJECT, REPO, RunningFarm, running_farm

GIBBERISH = "Blorptastik quarzelwumm fnord"  # the demo's NLU falls back on it


def demo_copy(tmp_path: Path) -> Path:
    """The demo project in ``tmp_path`` (labels are written into it), with the actions it imports."""
    project = tmp_path / "config" / "demo"
    shutil.copytree(DEMO_PROJECT, project, ignore=shutil.ignore_patterns(".switchboard-models"))
    shutil.copytree(REPO / "actions", tmp_path / "actions", ignore=shutil.ignore_patterns("__pycache__"))
    return project


def review_desk() -> dict[str, Any]:
    """Anna leads (labels and retrains); Ben is an agent (flags only)."""
    return {"web": {"enabled": True, "session_secret": "test-secret-0123456789", "agents": [
        {"id": "anna", "name": "Anna Schmidt", "password_hash": HASHES["anna"], "bots": ["demo"], "role": "lead"},
        {"id": "ben", "name": "Ben Wolf", "password_hash": HASHES["ben"], "bots": []},
    ]}}


def review_bots(project: Path, **review: Any) -> dict[str, Any]:
    return {"demo": {"project": str(project), "languages": ["de", "en"], "default_language": "de",
                     "channels": {"webchat": {}}, "handoff": {"business_hours": {}}, "review": review}}


@contextlib.asynccontextmanager
async def review_farm(tmp_path: Path, **review: Any) -> AsyncIterator[tuple[RunningFarm, Path]]:
    project = demo_copy(tmp_path)
    async with running_farm(tmp_path, bots=review_bots(project, **review), desk=review_desk()) as farm:
        yield farm, project


def review_service(farm: RunningFarm) -> ReviewService:
    found = farm.farm.services["review"]
    assert isinstance(found, ReviewService)
    return found


async def desk_login(http: aiohttp.ClientSession, url: str, agent: str) -> None:
    async with http.post(f"{url}/desk/api/login", json={"agent": agent, "password": PASSWORDS[agent]},
                         headers={"X-Desk-Request": "1"}) as response:
        assert response.status == 200, await response.text()
