"""structlog set-up: one event name per line of meaning, console or JSON output.

Every event passes the privacy masker before rendering (payment cards, IBANs and
each bot's extra patterns), so personal data of that kind never reaches a log sink.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

from core.errors import ConfigError
from core.privacy.masking import mask_log_values

Processor = Callable[[Any, str, MutableMapping[str, Any]], Any]


LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
          "critical": logging.CRITICAL}
FORMATS = ("console", "json")


def configure(level: str = "info", fmt: str = "console", masker: Processor | None = None) -> None:
    """Route structlog and stdlib logging to stderr; an unknown level or format is a `ConfigError`."""
    numeric = LEVELS.get(level.lower())
    if numeric is None:
        raise ConfigError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    if fmt not in FORMATS:
        raise ConfigError(f"log format must be console or json, not {fmt!r}")
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=numeric, force=True)
    for noisy in ("httpx", "telegram", "slack_bolt", "slack_sdk", "aiohttp.access", "pymongo", "rasa_sdk"):
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
            masker or mask_log_values,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # Through the stdlib logger: its handler looks up the stream at emit time, so
        # swapped or closed streams (tests, daemons) never break logging.
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
