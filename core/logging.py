"""structlog set-up: one event name per line of meaning, console or JSON output.

Processors registered with `add_processor` (e.g. the privacy masker) run on
every event before rendering, so personal data never reaches the log sink.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Callable

import structlog

Processor = Callable[[Any, str, MutableMapping[str, Any]], Any]
_extra: list[Processor] = []


def add_processor(processor: Processor) -> None:
    """Install a processor (before rendering) for all subsequent configure() calls."""
    if processor not in _extra:
        _extra.append(processor)


def configure(level: str = "info", fmt: str = "console") -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=numeric, force=True)
    for noisy in ("httpx", "telegram", "slack_bolt", "slack_sdk", "aiohttp.access", "pymongo"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    renderer: Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            *_extra,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # Through the stdlib logger: its handler looks up the stream at emit time, so
        # swapped or closed streams (tests, daemons) never break logging.
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
