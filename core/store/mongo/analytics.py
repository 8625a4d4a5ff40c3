"""Service cases on MongoDB: `MongoAnalyticsStore` (collections ``cases``, ``case_totals``, ``agent_activity``).

Several farm processes may update one case at once (a customer's turn in one, an agent's
claim in another), so nothing here reads, changes and writes back: a new case is an upsert
of ``<conversation>:<n>`` (two processes opening the same case meet on that ``_id``);
counters are ``$inc``; "the first" of something (handoff, claim, close, rating) is an
update conditional on the field still being null, and only the process whose update
matched adds it to the daily aggregate (``case_days``, one document per bot, day and
channel, ``$inc`` of its ``counts``). Reports read those aggregates, or for language, agent
and intent an aggregation pipeline (``$match`` on the ``bot, started_at`` index, ``$group``)
that returns sums, never the cases themselves.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from core.store.mongo.connection import Doc, MongoConnection, guarded, us
from core.store.ports.analytics import (
    CELL_COUNTERS,
    AnalyticsStore,
    CaseCell,
    CaseDurations,
    CaseQuery,
    CaseTotal,
    CaseUpdate,
    LiveCases,
    totals_from_counts,
)

_SECOND = 1_000_000  # stored times are microseconds
_COUNTERS = ("customer_messages", "bot_messages", "agent_messages", "fallbacks", "frustration_peaks",
             "dead_letters")
_GROUP_FIELD: dict[str | None, Any] = {
    None: None,
    "day": "$day",
    "channel": "$channel",
    "language": "$language",
    "agent": "$agent",
    "intent": {"$ifNull": ["$handoff_intent", "$intent"]},
}

INDEXES = {
    "cases": [
        IndexModel([("conversation_id", ASCENDING), ("n", DESCENDING)], name="case_latest"),
        IndexModel([("bot", ASCENDING), ("started_at", ASCENDING)], name="case_started"),
        IndexModel([("started_at", ASCENDING)], name="case_started_all"),
        IndexModel([("closed_at", ASCENDING), ("expires_at", ASCENDING)], name="case_open"),
        IndexModel([("with_agents", ASCENDING), ("bot", ASCENDING)], sparse=True, name="case_with_agents"),
    ],
    "case_days": [IndexModel([("bot", ASCENDING), ("day", ASCENDING)], name="case_day")],
}


def _match(query: CaseQuery) -> Doc:
    match: Doc = {}
    if query.bot is not None:
        match["bot"] = query.bot
    started: Doc = {}
    if query.since is not None:
        started["$gte"] = us(query.since)
    if query.until is not None:
        started["$lt"] = us(query.until)
    if started:
        match["started_at"] = started
    return match


def _key(value: Any) -> str | None:
    return None if value is None else str(value)


class MongoAnalyticsStore(AnalyticsStore):
    """`AnalyticsStore` on the connection's database."""

    def __init__(self, conn: MongoConnection) -> None:
        self._conn = conn
        self._indexed = False

    async def _db(self) -> Any:
        db = self._conn.require()
        if not self._indexed:
            for collection, indexes in INDEXES.items():
                await db[collection].create_indexes(indexes)
            self._indexed = True
        return db

    @staticmethod
    async def _add_days(db: Any, bot: str, day: str, channel: str | None, deltas: dict[str, int]) -> None:
        counts = {f"counts.{name.replace('.', '_')}": value for name, value in deltas.items() if value}
        if not counts:
            return
        for _ in range(3):
            try:
                await db.case_days.update_one(
                    {"_id": f"{bot}|{day}|{channel or ''}"},
                    {"$inc": counts, "$setOnInsert": {"bot": bot, "day": day, "channel": channel or ""}},
                    upsert=True,
                )
                return
            except DuplicateKeyError:
                continue  # two first upserts raced; the day exists now

    @guarded
    async def record_case(self, update: CaseUpdate) -> None:
        u = update
        db = await self._db()
        at = us(u.at)
        deltas: dict[str, int] = {}
        latest = await db.cases.find_one({"conversation_id": u.conversation_id}, sort=[("n", DESCENDING)])
        if u.opens and (latest is None or latest.get("closed_at") is not None
                        or (u.expiry_seconds > 0 and at - latest["last_customer_at"] > u.expiry_seconds * _SECOND)):
            n = 1 if latest is None else int(latest["n"]) + 1
            case_id = f"{u.conversation_id}:{n}"
            base = {"conversation_id": u.conversation_id, "n": n, "bot": u.bot, "day": u.at.strftime("%Y-%m-%d"),
                    "started_at": at, "last_customer_at": at, "channel": u.channel, "closed_at": None,
                    "intent": None, "handoff_at": None, "claimed_at": None, "first_reply_at": None,
                    "ended_at": None, "csat": None, **dict.fromkeys(_COUNTERS, 0)}
            with contextlib.suppress(DuplicateKeyError):  # another process opened it: use that one
                result = await db.cases.update_one({"_id": case_id}, {"$setOnInsert": base}, upsert=True)
                if result.upserted_id is not None:
                    deltas["cases"] = 1
        elif latest is None:
            return  # nothing to attach to (an agent action on a conversation without cases)
        else:
            case_id = latest["_id"]
        # One atomic update of the counters; the document as it was says which day the case
        # belongs to and whether this is its first fallback.
        change: Doc = {"$max": {"touched_at": at}}
        incs = {name: getattr(u, name) for name in _COUNTERS if getattr(u, name)}
        if incs:
            change["$inc"] = incs
            deltas.update(incs)
        if u.opens or u.customer_messages:
            change["$max"]["last_customer_at"] = at
            if u.expiry_seconds > 0:
                change["$max"]["expires_at"] = at + int(u.expiry_seconds * _SECOND)
        if u.language:
            change["$set"] = {"language": u.language}
        before = await db.cases.find_one_and_update(
            {"_id": case_id}, change, projection={"bot": 1, "day": 1, "channel": 1, "fallbacks": 1},
            return_document=ReturnDocument.BEFORE)
        if before is None:
            return
        if u.fallbacks and not before.get("fallbacks"):
            deltas["with_fallback"] = 1

        async def first(field: str, changes: Doc, unset: bool = False) -> bool:
            """Set ``changes`` if ``field`` is still null; whether this call did."""
            update: Doc = {"$set": changes}
            if unset:
                update["$unset"] = {"with_agents": ""}
            result = await db.cases.update_one({"_id": case_id, field: None}, update)
            return bool(result.modified_count)

        if u.intent:
            await first("intent", {"intent": u.intent})
        if u.handoff_reason and await first("handoff_at", {
                "handoff_at": at, "handoff_reason": u.handoff_reason, "handoff_intent": u.handoff_intent,
                "with_agents": True}):
            deltas[f"handoffs:{u.handoff_reason}"] = 1
        if u.claimed_by and await first("claimed_at", {"claimed_at": at, "agent": u.claimed_by}):
            deltas["claimed"] = 1
        if u.agent_replied:
            await first("first_reply_at", {"first_reply_at": at})
        if u.agent_done:
            await first("ended_at", {"ended_at": at}, unset=True)
        if u.closed and await first("closed_at", {"closed_at": at}, unset=True):
            deltas["closed"] = 1
        if u.csat is not None and await first("csat", {"csat": u.csat}):
            deltas[f"csat:{u.csat}"] = 1
        await self._add_days(db, before["bot"], before["day"], before.get("channel"), deltas)

    @guarded
    async def case_cells(self, query: CaseQuery) -> list[CaseCell]:
        db = await self._db()
        if query.by_day:
            return await self._from_days(db, query)

        def flag(name: str) -> Doc:
            return {"$sum": {"$cond": [{"$ifNull": [f"${name}", False]}, 1, 0]}}

        pipeline: list[Doc] = [
            {"$match": _match(query)},
            {"$group": {
                "_id": {"bot": "$bot", "key": _GROUP_FIELD[query.by], "reason": "$handoff_reason", "csat": "$csat"},
                "cases": {"$sum": 1},
                "with_fallback": {"$sum": {"$cond": [{"$gt": ["$fallbacks", 0]}, 1, 0]}},
                **{name: {"$sum": f"${name}"} for name in _COUNTERS},
                "claimed": flag("claimed_at"),
                "closed": flag("closed_at"),
            }},
        ]
        cells: dict[tuple[str, str | None], CaseCell] = {}
        async for doc in await db.cases.aggregate(pipeline):
            group = doc["_id"]
            key = _key(group.get("key"))
            cell = cells.get((group["bot"], key))
            if cell is None:
                cell = cells[(group["bot"], key)] = CaseCell(group["bot"], key)
            if group.get("reason") is not None:
                cell.add(f"handoffs:{group['reason']}", int(doc["cases"]))
            if group.get("csat") is not None:
                cell.add(f"csat:{group['csat']}", int(doc["cases"]))
            for name in CELL_COUNTERS:
                cell.add(name, int(doc[name]))
        return list(cells.values())

    @staticmethod
    async def _from_days(db: Any, query: CaseQuery) -> list[CaseCell]:
        match: Doc = {}
        if query.bot is not None:
            match["bot"] = query.bot
        days: Doc = {}
        if query.since is not None:
            days["$gte"] = query.since.strftime("%Y-%m-%d")
        if query.until is not None:
            days["$lt"] = query.until.strftime("%Y-%m-%d")
        if days:
            match["day"] = days
        cells: dict[tuple[str, str | None], CaseCell] = {}
        async for doc in db.case_days.find(match):
            key = None if query.by is None else (doc.get(query.by) or None)
            cell = cells.get((doc["bot"], key))
            if cell is None:
                cell = cells[(doc["bot"], key)] = CaseCell(doc["bot"], key)
            for name, value in (doc.get("counts") or {}).items():
                cell.add(name, int(value))
        return list(cells.values())

    @guarded
    async def case_durations(self, query: CaseQuery) -> list[CaseDurations]:
        db = await self._db()
        match = {**_match(query), "handoff_at": {"$ne": None}}
        fields = {"bot": 1, "handoff_at": 1, "claimed_at": 1, "first_reply_at": 1, "ended_at": 1,
                  "day": 1, "channel": 1, "language": 1, "agent": 1, "intent": 1, "handoff_intent": 1}
        groups: dict[tuple[str, str | None], CaseDurations] = {}
        async for doc in db.cases.find(match, fields):
            if query.by is None:
                key = None
            elif query.by == "intent":
                key = _key(doc.get("handoff_intent") or doc.get("intent"))
            else:
                key = _key(doc.get(query.by))
            found = groups.get((doc["bot"], key))
            if found is None:
                found = groups[(doc["bot"], key)] = CaseDurations(doc["bot"], key)
            handoff, claimed = doc.get("handoff_at"), doc.get("claimed_at")
            reply, ended = doc.get("first_reply_at"), doc.get("ended_at")
            if claimed is not None:
                found.to_claim.append(max(0.0, (claimed - handoff) / _SECOND))
            if reply is not None:
                found.to_first_reply.append(max(0.0, (reply - handoff) / _SECOND))
            if claimed is not None and ended is not None:
                found.handle.append(max(0.0, (ended - claimed) / _SECOND))
        for found in groups.values():
            found.to_claim.sort()
            found.to_first_reply.sort()
            found.handle.sort()
        return list(groups.values())

    @guarded
    async def case_totals(self) -> list[CaseTotal]:
        db = await self._db()
        sums: dict[tuple[str, str], int] = {}
        async for doc in db.case_days.find({}, {"bot": 1, "counts": 1}):
            for name, value in (doc.get("counts") or {}).items():
                sums[(doc["bot"], name)] = sums.get((doc["bot"], name), 0) + int(value)
        return totals_from_counts((bot, name, value) for (bot, name), value in sums.items())

    @guarded
    async def live_cases(self, now: datetime) -> list[LiveCases]:
        db = await self._db()
        at = us(now)
        waiting: dict[str, tuple[int, int]] = {}
        opened: dict[str, int] = {}
        async for doc in db.cases.find({"with_agents": True},
                                       {"bot": 1, "handoff_at": 1, "claimed_at": 1, "expires_at": 1}):
            bot = doc["bot"]
            if doc.get("claimed_at") is None:
                count, oldest = waiting.get(bot, (0, at))
                waiting[bot] = (count + 1, min(oldest, int(doc["handoff_at"])))
            expires = doc.get("expires_at")
            if expires is not None and expires <= at:
                opened[bot] = opened.get(bot, 0) + 1  # still with agents after the session expiry
        async for doc in db.cases.find({"closed_at": None, "$or": [{"expires_at": {"$gt": at}},
                                                                   {"expires_at": None}]}, {"bot": 1}):
            opened[doc["bot"]] = opened.get(doc["bot"], 0) + 1
        return [
            LiveCases(bot, waiting[bot][0] if bot in waiting else 0,
                      max(0.0, (at - waiting[bot][1]) / _SECOND) if bot in waiting else 0.0, opened.get(bot, 0))
            for bot in sorted(set(waiting) | set(opened))
        ]

    @guarded
    async def agent_seen(self, bot: str, agent_id: str, at: datetime) -> None:
        db = await self._db()
        with contextlib.suppress(DuplicateKeyError):
            await db.agent_activity.update_one({"_id": f"{bot}|{agent_id}"},
                                               {"$max": {"last_at": us(at)}, "$set": {"bot": bot}}, upsert=True)

    @guarded
    async def agents_active(self, since: datetime) -> dict[str, int]:
        db = await self._db()
        active: dict[str, int] = {}
        async for doc in db.agent_activity.find({"last_at": {"$gte": us(since)}}, {"bot": 1}):
            active[doc["bot"]] = active.get(doc["bot"], 0) + 1
        return active
