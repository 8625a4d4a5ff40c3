"""Custom actions through rasa-sdk: in-process (``ActionExecutor``) or a remote action server.

Both speak the same action-call JSON (``next_action``, ``sender_id``, ``tracker``,
``domain``, ``version``) and return ``{"events": [...], "responses": [...]}``.

Which runner a bot gets is decided in one place, `choose_runner`: as under Rasa, the
action server named by ``endpoints.yml`` (or farm.yml's ``bots.<name>.action_endpoint``)
when there is one, else the project's own ``actions`` package in-process; ``--actions
in-process|endpoint`` forces either.

A project's actions import as the top-level package ``actions`` (``from actions.parsing
import X`` works, as under ``rasa run actions``). Several bots in one process may each
have their own ``actions``: every module is imported while that bot's package is the one
named ``actions``, so imports at module level resolve to the bot's own code. The limit: an
``import actions.x`` executed later, inside ``run()``, resolves to the package of the bot
loaded last (Python has one ``sys.modules``); import at module level in multi-bot farms.

A synchronous ``Action.run`` runs in a thread pool, an ``async`` one on the event loop;
both under the project's ``switchboard.action_timeout`` (default 10 s), so one slow action
never stalls other conversations. Validators a ``FormValidationAction`` calls run inside
its (async) ``run``, on the loop.

Handoff convention: rasa-sdk has no handoff event, so an action that wants a person
returns the plain event ``{"event": "handoff", "reason": "..."}``; the engine reports
it as ``TurnOutput.handoff`` with reason ``"action"`` (the action's text in ``detail``).
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import importlib.machinery
import importlib.util
import inspect
import pkgutil
import sys
import threading
import traceback
import types
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import aiohttp
import structlog

from core.errors import DialogueError

if TYPE_CHECKING:
    from core.rasa.project import RasaProject

log = structlog.get_logger(__name__)

ActionsMode = Literal["auto", "in-process", "endpoint"]
ACTIONS_MODES: tuple[str, ...] = ("auto", "in-process", "endpoint")
DEFAULT_ACTION_TIMEOUT = 10.0
PACKAGE = "actions"


class ActionRejected(Exception):
    """The action refused to run (rasa-sdk ``ActionExecutionRejection`` / HTTP 400)."""


class ActionTimeout(DialogueError):
    """The action did not finish within the timeout; its events are dropped, as Rasa does."""


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


# ---- importing a project's ``actions`` ------------------------------------------------------

_IMPORT_LOCK = threading.RLock()
_LOADED: dict[Path, dict[str, types.ModuleType]] = {}  # actions location -> its actions* modules
_CURRENT: list[Path] = []  # the location whose modules sys.modules holds now


def _is_ours(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _take_package_modules() -> dict[str, types.ModuleType]:
    taken = {name: module for name, module in sys.modules.items() if _is_ours(name)}
    for name in taken:
        del sys.modules[name]
    return taken


def _import_error(location: Path, exc: BaseException) -> DialogueError:
    """One line naming the user's file and line, not a traceback."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return DialogueError(f"{exc.filename}:{exc.lineno}: {type(exc).__name__}: {exc.msg} (importing the actions)")
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).is_relative_to(location)]
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else str(location)
    return DialogueError(f"{where}: {type(exc).__name__}: {exc} (importing the actions)")


def _execute(location: Path) -> types.ModuleType:
    if location.is_dir():
        init = location / "__init__.py"
        if init.is_file():
            spec = importlib.util.spec_from_file_location(PACKAGE, init, submodule_search_locations=[str(location)])
        else:  # a namespace package, as ``rasa run actions`` accepts
            spec = importlib.machinery.ModuleSpec(PACKAGE, None, is_package=True)
            spec.submodule_search_locations = [str(location)]
    else:
        spec = importlib.util.spec_from_file_location(PACKAGE, location)
    if spec is None:
        raise DialogueError(f"{location}: not an importable actions package")
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    if spec.loader is not None:
        spec.loader.exec_module(module)
    if hasattr(module, "__path__"):  # import every submodule now, so errors surface at load
        for info in pkgutil.walk_packages(module.__path__, PACKAGE + "."):
            importlib.import_module(info.name)
    return module


def import_actions_package(location: Path) -> list[types.ModuleType]:
    """Import ``location`` (an ``actions/`` folder or ``actions.py``) as the package ``actions``.

    Returns the package and all its submodules. Loading the same location again returns
    the same modules (and makes them ``sys.modules``' ``actions`` again). Raises
    `DialogueError` naming the file and line when the user's code fails to import.
    """
    location = location.resolve()
    with _IMPORT_LOCK:
        modules = _LOADED.get(location)
        if modules is None:
            saved = _take_package_modules()
            try:
                _execute(location)
            except Exception as exc:
                _take_package_modules()
                sys.modules.update(saved)
                raise _import_error(location, exc) from exc
            modules = {name: module for name, module in sys.modules.items() if _is_ours(name)}
            _LOADED[location] = modules
        else:
            _take_package_modules()
            sys.modules.update(modules)
        if _CURRENT and _CURRENT[0] != location:
            log.warning("actions.package_replaced", now=str(location), before=str(_CURRENT[0]),
                        note="imports of 'actions' inside run() now resolve to this package")
        _CURRENT[:] = [location]
        return [modules[name] for name in sorted(modules)]


def action_classes(modules: Iterable[types.ModuleType]) -> list[type[Any]]:
    """The rasa-sdk ``Action`` subclasses defined in ``modules`` (not imported into them)."""
    from rasa_sdk import Action

    found: list[type[Any]] = []
    for module in modules:
        for value in vars(module).values():
            if (inspect.isclass(value) and issubclass(value, Action) and value.__module__ == module.__name__
                    and value not in found and not inspect.isabstract(value)):
                found.append(value)
    return found


# ---- runners -------------------------------------------------------------------------------

ActionFunction = Callable[[Any, Any, Any], Any]


def _off_loop(function: ActionFunction, pool: ThreadPoolExecutor) -> Callable[[Any, Any, Any], Awaitable[Any]]:
    async def run(dispatcher: Any, tracker: Any, domain: Any) -> Any:
        context = contextvars.copy_context()
        result = await asyncio.get_running_loop().run_in_executor(pool, context.run, function, dispatcher, tracker, domain)
        return await result if inspect.isawaitable(result) else result

    return run


class InProcessActions:
    """Runs a project's rasa-sdk actions through rasa-sdk's own ``ActionExecutor``.

    Only the classes defined in the given modules are registered (rasa-sdk would register
    every ``Action`` subclass in the process, other bots' included).
    """

    def __init__(self, modules: Iterable[types.ModuleType], *, timeout: float = DEFAULT_ACTION_TIMEOUT,
                 threads: int = 16) -> None:
        from rasa_sdk.executor import ActionExecutor

        self.timeout = timeout
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="actions")
        self.executor = ActionExecutor()
        for cls in action_classes(modules):
            try:
                self.executor.register_action(cls)
            except NotImplementedError:  # an abstract base without name(): rasa-sdk would fail too
                log.debug("actions.skipped_base_class", cls=cls.__qualname__)
        for name, function in list(self.executor.actions.items()):
            if not inspect.iscoroutinefunction(function):
                self.executor.actions[name] = _off_loop(function, self.pool)
        log.info("actions.registered", actions=sorted(self.executor.actions), timeout=timeout)

    def knows(self, name: str) -> bool | None:
        return name in self.executor.actions

    async def run(self, name: str, tracker: dict[str, Any], domain: dict[str, Any]) -> ActionResult:
        from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException

        try:
            result = await asyncio.wait_for(self.executor.run(action_call(name, tracker, domain)), self.timeout)
        except ActionExecutionRejection as exc:
            raise ActionRejected(str(exc)) from exc
        except ActionNotFoundException as exc:
            raise DialogueError(f"no custom action '{name}' in the actions package") from exc
        except TimeoutError as exc:
            log.error("actions.timeout", action=name, seconds=self.timeout)
            raise ActionTimeout(f"custom action '{name}' did not finish within {self.timeout:g} s") from exc
        except Exception as exc:  # the action's own bug: log it with its traceback, end the turn
            log.exception("actions.failed", action=name)
            raise DialogueError(f"custom action '{name}' failed: {type(exc).__name__}: {exc}") from exc
        if result is None:
            return ActionResult()
        return ActionResult(list(result.events), list(result.responses))

    async def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class RemoteActions:
    """A rasa-sdk action server (``rasa run actions``) reached over HTTP."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_ACTION_TIMEOUT) -> None:
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
        except TimeoutError as exc:
            raise ActionTimeout(f"action server {self.url} did not answer '{name}' within {self.timeout.total:g} s") from exc
        except aiohttp.ClientError as exc:
            raise DialogueError(f"action server {self.url} unreachable for '{name}': {exc}") from exc
        body = body or {}
        return ActionResult(list(body.get("events") or []), list(body.get("responses") or []))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def choose_runner(project: RasaProject, *, endpoint: str | None = None, mode: str = "auto") -> ActionRunner | None:
    """The bot's action runner; the one place that decides it.

    ``endpoint`` (farm.yml's ``bots.<name>.action_endpoint``) overrides endpoints.yml's.
    ``auto``: the action server when one is named, else the project's ``actions``
    in-process, else none. ``in-process`` / ``endpoint`` force one (`DialogueError` when
    it is missing).
    """
    if mode not in ACTIONS_MODES:
        raise DialogueError(f"--actions must be one of {', '.join(ACTIONS_MODES)}, not '{mode}'")
    url = endpoint or project.action_endpoint
    timeout = project.config.action_timeout
    if mode == "endpoint" or (mode == "auto" and url):
        if not url:
            raise DialogueError("--actions endpoint: no action_endpoint in endpoints.yml (or farm.yml)")
        log.info("actions.endpoint", url=url, timeout=timeout)
        return RemoteActions(url, timeout=timeout)
    location = project.actions_dir
    if location is None:
        custom = [a for a in project.domain.actions if project.domain.is_custom_action(a)]
        if mode == "in-process" and custom:
            raise DialogueError(f"--actions in-process: {project.root} has no actions/ package "
                                f"(or switchboard.actions in config.yml) for {', '.join(custom)}")
        return None
    return InProcessActions(import_actions_package(location), timeout=timeout)
