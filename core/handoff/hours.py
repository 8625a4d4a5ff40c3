"""Business hours of a bot's agents: are people there now, and when are they back?

``HandoffConfig.business_hours`` maps weekday keys (``mon`` … ``sun``) to one or more
``HH:MM-HH:MM`` spans separated by commas (``"08:00-12:00, 13:00-17:00"``); ``24:00``
ends a day; a missing day, ``""`` or ``"closed"`` means closed. An empty mapping means
always open. Times are local to ``HandoffConfig.timezone`` (DST handled by zoneinfo).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import ConfigError
from core.handoff.config import HandoffConfig

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_END_OF_DAY = 24 * 60


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Opening spans per weekday (0 = Monday) in minutes after local midnight."""

    timezone: ZoneInfo
    spans: tuple[tuple[tuple[int, int], ...], ...]  # 7 entries
    always_open: bool = False

    @classmethod
    def from_config(cls, config: HandoffConfig) -> BusinessHours:
        """Parse and validate; raises `ConfigError` naming the key that is wrong."""
        try:
            zone = ZoneInfo(config.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"unknown timezone {config.timezone!r}", key="handoff.timezone") from exc
        if not config.business_hours:
            return cls(zone, tuple(() for _ in DAYS), always_open=True)
        unknown = set(config.business_hours) - set(DAYS)
        if unknown:
            raise ConfigError(
                f"unknown day(s) {sorted(unknown)}; use {', '.join(DAYS)}", key="handoff.business_hours"
            )
        week: list[tuple[tuple[int, int], ...]] = []
        for day in DAYS:
            raw = (config.business_hours.get(day) or "").strip()
            if not raw or raw.lower() == "closed":
                week.append(())
                continue
            spans: list[tuple[int, int]] = []
            for part in raw.split(","):
                match = _SPAN.match(part)
                if not match:
                    raise ConfigError(f"expected HH:MM-HH:MM, got {part.strip()!r}",
                                      key=f"handoff.business_hours.{day}")
                h1, m1, h2, m2 = (int(g) for g in match.groups())
                start, end = h1 * 60 + m1, h2 * 60 + m2
                if m1 > 59 or m2 > 59 or start >= end or end > _END_OF_DAY:
                    raise ConfigError(f"invalid span {part.strip()!r}", key=f"handoff.business_hours.{day}")
                spans.append((start, end))
            week.append(tuple(sorted(spans)))
        return cls(zone, tuple(week))

    def is_open(self, at: datetime) -> bool:
        """True if agents work at ``at`` (any timezone-aware datetime)."""
        if self.always_open:
            return True
        local = at.astimezone(self.timezone)
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.spans[local.weekday()])

    def next_opening(self, at: datetime) -> datetime | None:
        """When agents are next at work (``at`` itself if open now); None if never open."""
        if self.is_open(at):
            return at
        local = at.astimezone(self.timezone)
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            for start, _end in self.spans[day.weekday()]:
                opening = datetime.combine(day, time(start // 60, start % 60), tzinfo=self.timezone)
                if opening > local:
                    return opening
        return None
