"""Custom actions through rasa-sdk: in-process (``ActionExecutor``) or a remote action server.

Both speak the same action-call JSON (``next_action``, ``sender_id``, ``tracker``,
``domain``, ``version``) and return ``{"events": [...], "responses": [...]}``.

Handoff convention: rasa-sdk has no handoff event, so an action that wants a person
returns the plain event ``{"event": "handoff", "reason": "..."}``; the engine reports
it as ``TurnOutput.handoff`` with reason ``"action"`` (the action's text in ``detail``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pkgutil
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import structlog

from core.errors import DialogueError

log = structlog.get_logger(__name__)


class ActionRejected(Exception):
    """The action refused to run (rasa-sdk ``ActionExecutionRejection`` / HTTP 400)."""


@dataclass(frozen=True, slots=True)
class ActionResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)


class ActionRunner(Protocol):
    async def run(self, name: str, tracker: dict[str, Any], domain: dict[str, Any]) -> ActionResult: ...

    def knows(self, name: str) -> bool | None:
        """True/False if the runner knows its actions; None if it cannot tell (remote)."""
        ...

    async def close(self) -> None: ...


def _sdk_version() -> str:
    from rasa_sdk import __version__

    return str(__version__)


def action_call(name: str, tracker: dict[str, Any], domain: dict[str, Any]) -> dict[str, Any]:
    return {"next_action": name, "sender_id": tracker.get("sender_id"), "tracker": tracker, "domain": domain, "version": _sdk_version()}


def import_actions_package(project_root: Path, package: str | None) -> types.ModuleType | None:
    """Import the project's actions: a named package, or ``actions/`` / ``actions.py`` in the project.

    A project's own ``actions`` is imported under a private name, so two bots'
    ``actions`` packages in one farm do not collide.
    """
    if package:
        module = importlib.import_module(package)
    else:
        folder, single = project_root / "actions", project_root / "actions.py"
        digest = hashlib.sha1(str(project_root.resolve()).encode()).hexdigest()[:10]
        name = f"_switchboard_actions_{digest}"
        if name in sys.modules:
            module = sys.modules[name]
        elif (folder / "__init__.py").is_file():
            spec = importlib.util.spec_from_file_location(name, folder / "__init__.py", submodule_search_locations=[str(folder)])
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        elif single.is_file():
            spec = importlib.util.spec_from_file_location(name, single)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            return None
    if hasattr(module, "__path__"):  # import submodules now, so errors surface here (rasa-sdk would sys.exit)
        for info in pkgutil.walk_packages(module.__path__, module.__name__ + "."):
            importlib.import_module(info.name)
    return module


class InProcessActions:
    """Runs a package's rasa-sdk actions through rasa-sdk's own ``ActionExecutor``."""

    def __init__(self, module: types.ModuleType) -> None:
        from rasa_sdk.executor import ActionExecutor

        self.executor = ActionExecutor()
        self.executor.register_package(module)
        prefix = module.__name__
        # rasa-sdk registers every Action subclass in the process; keep only this package's.
        for action_name, function in list(self.executor.actions.items()):
            owner = getattr(getattr(function, "__self__", None), "__class__", None)
            if owner is not None and not (owner.__module__ == prefix or owner.__module__.startswith(prefix + ".")):
                del self.executor.actions[action_name]
        log.info("actions.registered", package=prefix, actions=sorted(self.executor.actions))

    def knows(self, name: str) -> bool | None:
        return name in self.executor.actions

    async def run(self, name: str, tracker: dict[str, Any], domain: dict[str, Any]) -> ActionResult:
        from rasa_sdk.interfaces import ActionExecutionRejection

        try:
            result = await self.executor.run(action_call(name, tracker, domain))
        except ActionExecutionRejection as exc:
            raise ActionRejected(str(exc)) from exc
        if result is None:
            return ActionResult()
        return ActionResult(list(result.events), list(result.responses))

    async def close(self) -> None:
        return None


class RemoteActions:
    """A rasa-sdk action server (``rasa run actions``) reached over HTTP."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def knows(self, name: str) -> bool | None:
        return None

    async def run(self, name: str, tracker: dict[str, Any], domain: dict[str, Any]) -> ActionResult:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        try:
            async with self._session.post(self.url, json=action_call(name, tracker, domain)) as response:
                body = await response.json(content_type=None)
                if response.status == 400:
                    raise ActionRejected(str((body or {}).get("error", "rejected")))
                if response.status == 404:
                    raise DialogueError(f"action server {self.url} has no action '{name}'")
                if response.status != 200:
                    raise DialogueError(f"action server {self.url} answered {response.status} for '{name}': {body}")
        except aiohttp.ClientError as exc:
            raise DialogueError(f"action server {self.url} unreachable for '{name}': {exc}") from exc
        body = body or {}
        return ActionResult(list(body.get("events") or []), list(body.get("responses") or []))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
