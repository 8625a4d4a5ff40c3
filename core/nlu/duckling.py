"""Rasa's ``DucklingEntityExtractor``: dates, numbers, amounts, emails … from a Duckling server.

Configured in config.yml's pipeline as under Rasa 3.x (``url``, ``dimensions``, ``locale``,
``timezone``, ``timeout`` — default 3 s; ``RASA_DUCKLING_HTTP_URL`` overrides ``url``).
Each message is POSTed form-encoded to ``<url>/parse`` (``text``, ``locale``, ``tz``,
``dims`` as JSON, ``reftime`` in ms); the answer becomes Rasa entities with
``extractor: DucklingEntityExtractor`` and the value Rasa builds (an interval is
``{"from": ..., "to": ...}``). A server that is down, slow or answers an error gives no
Duckling entities and a logged warning; the turn goes on.

The call is synchronous (bounded by ``timeout``), like Rasa's.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)

EXTRACTOR = "DucklingEntityExtractor"
URL_VARIABLE = "RASA_DUCKLING_HTTP_URL"


def duckling_value(match: Mapping[str, Any]) -> Any:
    """The entity value as Rasa takes it from a Duckling match."""
    value = match.get("value") or {}
    if value.get("type") == "interval":
        return {"to": (value.get("to") or {}).get("value"), "from": (value.get("from") or {}).get("value")}
    return value.get("value")


def to_rasa_entities(matches: Iterable[Mapping[str, Any]], dimensions: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """Duckling's answer as Rasa entities, only the configured ``dimensions`` when given."""
    entities = []
    for match in matches:
        if dimensions and match.get("dim") not in dimensions:
            continue
        entities.append({
            "start": match["start"], "end": match["end"],
            "text": match.get("body", match.get("text")),
            "value": duckling_value(match), "confidence": 1.0,
            "additional_info": match.get("value"), "entity": match["dim"],
            "extractor": EXTRACTOR,
        })
    return entities


@dataclass(frozen=True, slots=True)
class DucklingExtractor:
    url: str
    dimensions: tuple[str, ...] | None = None
    locale: str | None = None
    timezone: str | None = None
    timeout: float = 3.0

    def form(self, text: str, reference_ms: int) -> dict[str, str]:
        """The form fields Rasa sends (unset locale / timezone are left out, as requests does)."""
        fields = {"text": text, "locale": self.locale, "tz": self.timezone,
                  "dims": json.dumps(list(self.dimensions) if self.dimensions else None), "reftime": str(reference_ms)}
        return {k: v for k, v in fields.items() if v is not None}

    def extract(self, text: str, reference_time: float | None = None) -> list[dict[str, Any]]:
        """Entities Duckling finds in ``text``; ``[]`` (and a warning) when the server fails."""
        reference_ms = int(reference_time if reference_time is not None else time.time()) * 1000
        body = urllib.parse.urlencode(self.form(text, reference_ms)).encode("utf-8")
        request = urllib.request.Request(
            self.url.rstrip("/") + "/parse", data=body, method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                matches = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            log.warning("nlu.duckling_failed", url=self.url, status=exc.code)
            return []
        except (OSError, ValueError) as exc:  # refused, timed out, not JSON
            log.warning("nlu.duckling_unreachable", url=self.url, error=str(exc))
            return []
        if not isinstance(matches, list):
            log.warning("nlu.duckling_failed", url=self.url, error="answer is not a list")
            return []
        return to_rasa_entities(matches, self.dimensions)


def duckling_from_pipeline(pipeline: Iterable[Mapping[str, Any]]) -> DucklingExtractor | None:
    """The extractor for the pipeline's ``DucklingEntityExtractor``, if it has one with a URL."""
    component = next((c for c in pipeline if c.get("name") == EXTRACTOR), None)
    if component is None:
        return None
    url = os.environ.get(URL_VARIABLE) or component.get("url")
    if not url:
        log.warning("nlu.duckling_without_url", note=f"no 'url' in config.yml and no {URL_VARIABLE}; no Duckling entities")
        return None
    dimensions = component.get("dimensions")
    return DucklingExtractor(
        url=str(url),
        dimensions=tuple(str(d) for d in dimensions) if dimensions else None,
        locale=str(component["locale"]) if component.get("locale") else None,
        timezone=str(component["timezone"]) if component.get("timezone") else None,
        timeout=float(component.get("timeout") or 3.0),
    )
