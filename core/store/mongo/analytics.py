"""Service cases on MongoDB: `MongoAnalyticsStore` (collections ``cases``, ``case_totals``, ``agent_activity``).

Several farm processes may update one case at once (a customer's turn in one, an agent's
claim in another), so nothing here reads, changes and writes back: a new case is an upsert
of ``<conversation>:<n>`` (two processes opening the same case meet on that ``_id``);
counters are ``$inc``; "the first" of something (handoff, claim, reply, rating) is an
update conditional on the field still being null, and only the process whose update
matched adds to the all-time totals. Reports are aggregation pipelines (``$match`` on the
``bot, started_at`` index, ``$group``) that return sums, never the cases themselves.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from core.store.mongo.connection import Doc, MongoConnection, guarded, us
from core.store.ports.analytics import (
    AnalyticsStore,
    CaseCell,
    CaseDurations,
    CaseQuery,
    CaseTotal,
    CaseUpdate,
    LiveCases,
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

    async def _total(self, db: Any, bot: str, name: str, label: str, value: int) -> None:
        if not value:
            return
        for _ in range(3):
            try:
                await db.case_totals.update_one(
                    {"_id": f"{bot}|{name}|{label}"},
                    {"$inc": {"value": value}, "$setOnInsert": {"bot": bot, "name": name, "label": label}},
                    upsert=True,
                )
                return
            except DuplicateKeyError:
                continue  # two first upserts raced; the counter exists now

    @guarded
    async def record_case(self, update: CaseUpdate) -> None:
        u = update
        db = await self._db()
        at = us(u.at)
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
                    await self._total(db, u.bot, "cases", "", 1)
        elif latest is None:
            return  # nothing to attach to (an agent action on a conversation without cases)
        else:
            case_id = latest["_id"]
        change: Doc = {}
        incs = {name: getattr(u, name) for name in _COUNTERS if getattr(u, name)}
        if incs:
            change["$inc"] = incs
        if u.opens or u.customer_messages:
            change["$max"] = {"last_customer_at": at}
            if u.expiry_seconds > 0:
                change["$max"]["expires_at"] = at + int(u.expiry_seconds * _SECOND)
        if u.language:
            change["$set"] = {"language": u.language}
        if u.closed:
            change.setdefault("$set", {})["closed_at"] = at
            change["$unset"] = {"with_agents": ""}
        if change:
            await db.cases.update_one({"_id": case_id}, change)
        if u.intent:
            await db.cases.update_one({"_id": case_id, "intent": None}, {"$set": {"intent": u.intent}})
        if u.handoff_reason:
            result = await db.cases.update_one(
                {"_id": case_id, "handoff_at": None},
                {"$set": {"handoff_at": at, "handoff_reason": u.handoff_reason, "handoff_intent": u.handoff_intent,
                          "with_agents": True}})
            if result.modified_count:
                await self._total(db, u.bot, "handoffs", u.handoff_reason, 1)
        if u.claimed_by:
            await db.cases.update_one({"_id": case_id, "claimed_at": None},
                                      {"$set": {"claimed_at": at, "agent": u.claimed_by}})
        if u.agent_replied:
            await db.cases.update_one({"_id": case_id, "first_reply_at": None}, {"$set": {"first_reply_at": at}})
        if u.agent_done:
            await db.cases.update_one({"_id": case_id, "ended_at": None},
                                      {"$set": {"ended_at": at}, "$unset": {"with_agents": ""}})
        if u.csat is not None:
            result = await db.cases.update_one({"_id": case_id, "csat": None}, {"$set": {"csat": u.csat}})
            if result.modified_count:
                await self._total(db, u.bot, "csat_responses", "", 1)
                await self._total(db, u.bot, "csat_score_sum", "", u.csat)
        await self._total(db, u.bot, "fallbacks", "", u.fallbacks)
        await self._total(db, u.bot, "dead_letters", "", u.dead_letters)

    @guarded
    async def case_cells(self, query: CaseQuery) -> list[CaseCell]:
        db = await self._db()

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
        cells = []
        async for doc in await db.cases.aggregate(pipeline):
            group = doc["_id"]
            cells.append(CaseCell(
                group["bot"], _key(group.get("key")), group.get("reason"), group.get("csat"), int(doc["cases"]),
                int(doc["with_fallback"]), int(doc["fallbacks"]), int(doc["frustration_peaks"]),
                int(doc["dead_letters"]), int(doc["customer_messages"]), int(doc["bot_messages"]),
                int(doc["agent_messages"]), int(doc["claimed"]), int(doc["closed"]),
            ))
        return cells

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
        totals = [CaseTotal(d["bot"], d["name"], d["label"], int(d["value"])) async for d in db.case_totals.find({})]
        return sorted(totals, key=lambda t: (t.bot, t.name, t.label))

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
