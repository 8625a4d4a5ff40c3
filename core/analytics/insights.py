"""The team lead's insights page at ``/desk/insights``: the service figures of one bot over a date range.

A page rendered on the server (no script): charts over time as SVG (`core.analytics.charts`) —
containment, handoffs by reason, waiting times, CSAT — tables by channel, language, agent
and intent, a date range form and CSV downloads. Every figure comes from
`core.analytics.report.build_report`, so the CSV of ``/desk/insights/report.csv`` is byte for
byte what ``switchboard report --format csv`` prints for the same options.

Access: a web-desk agent with ``role: lead`` (``desk.web.agents``), logged in at ``/desk``
(the same session cookie), for the bots they serve. Others get 401 (not logged in) or 403.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from html import escape
from typing import Any, Protocol

from aiohttp import web

from core.analytics.charts import COLOURS, Series, bar_chart
from core.analytics.report import GROUPINGS, build_report, to_csv
from core.desk_config import WebAgent
from core.model import utcnow
from core.ports import Route
from core.store.ports.analytics import AnalyticsStore

DEFAULT_DAYS = 30
MAX_DAILY_BARS = 62  # a longer range is charted per ISO week
TABLES = ("channel", "language", "agent", "intent")
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; background: #f4f5f7;
       color: #1c1e21; }
header { display: flex; gap: 1rem; align-items: center; padding: .6rem 1rem; background: #111827; color: #fff; }
header h1 { font-size: 1.05rem; margin: 0; flex: 1; }
header a { color: #cbd5e1; }
main { padding: 1rem; max-width: 1400px; }
form.range { display: flex; gap: .8rem; align-items: end; flex-wrap: wrap; margin-bottom: 1rem; }
form.range label { display: flex; flex-direction: column; font-size: .85rem; color: #4b5563; }
form.range input, form.range select, form.range button { font: inherit; padding: .35rem .5rem; }
.cards { display: flex; gap: .8rem; flex-wrap: wrap; margin-bottom: 1rem; }
.card { background: #fff; border-radius: .5rem; padding: .6rem .9rem; min-width: 150px; }
.card b { display: block; font-size: 1.4rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 1rem; }
figure { background: #fff; border-radius: .5rem; margin: 0; padding: .6rem; }
figcaption { font-weight: 600; margin-bottom: .3rem; }
svg.chart { max-width: 100%; height: auto; }
table { border-collapse: collapse; background: #fff; margin: .4rem 0 1.2rem; font-size: .9rem; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #e5e7eb; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.empty { color: #4b5563; }
"""


class DeskSessions(Protocol):
    """What the page needs of the web desk: its agents and who is logged in (`core.web.desk.WebDesk`)."""

    agents: dict[str, WebAgent]

    async def authorize(self, request: web.Request, bot: str) -> str | None: ...


def _fmt(value: Any, *, percent: bool = False, seconds: bool = False) -> str:
    if value is None:
        return "–"
    if percent:
        return f"{value * 100:.0f} %"
    if seconds:
        return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"
    return str(value)


class InsightsPage:
    """The routes of the insights page; build with the web desk, the store and the farm's bots."""

    def __init__(self, desk: DeskSessions, store: AnalyticsStore, bots: Sequence[str]) -> None:
        self.desk = desk
        self.store = store
        self.bots = tuple(bots)

    def routes(self) -> Sequence[Route]:
        return (
            Route("GET", "/desk/insights", self._page, name="insights"),
            Route("GET", "/desk/insights.css", self._css),
            Route("GET", "/desk/insights/report.csv", self._csv),
        )

    async def _css(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=_CSS, content_type="text/css", headers={"X-Content-Type-Options": "nosniff"})

    # -- access --------------------------------------------------------------------------
    async def _lead_bots(self, request: web.Request) -> list[str]:
        """The bots the logged-in lead serves; 401 / 403 otherwise."""
        allowed: list[str] = []
        agent: WebAgent | None = None
        for bot in self.bots:
            agent_id = await self.desk.authorize(request, bot)
            if agent_id is not None:
                agent = self.desk.agents.get(agent_id.split(":", 1)[-1])
                allowed.append(bot)
        if agent is None:
            raise web.HTTPUnauthorized(text=_shell("Insights", '<p>Log in at <a href="/desk">the desk</a> as a team '
                                                   "lead first.</p>"), content_type="text/html", headers=_HEADERS)
        if agent.role != "lead":
            raise web.HTTPForbidden(text=_shell("Insights", "<p>The insights page is for team leads "
                                                "(<code>role: lead</code> in <code>desk.web.agents</code>).</p>"),
                                    content_type="text/html", headers=_HEADERS)
        return allowed

    @staticmethod
    def _range(request: web.Request) -> tuple[date, date]:
        today = utcnow().date()
        try:
            until = date.fromisoformat(request.query["until"]) if request.query.get("until") else today
            since = (date.fromisoformat(request.query["since"]) if request.query.get("since")
                     else until - timedelta(days=DEFAULT_DAYS - 1))
        except ValueError:
            raise web.HTTPBadRequest(text="since and until are dates as YYYY-MM-DD") from None
        if since > until:
            raise web.HTTPBadRequest(text="since is after until")
        return since, until

    @staticmethod
    def _bot(request: web.Request, allowed: list[str]) -> str:
        bot = request.query.get("bot") or allowed[0]
        if bot not in allowed:
            raise web.HTTPForbidden(text=f"not a bot you lead: {bot}")
        return bot

    # -- CSV -----------------------------------------------------------------------------
    async def _csv(self, request: web.Request) -> web.StreamResponse:
        allowed = await self._lead_bots(request)
        bot = self._bot(request, allowed)
        since, until = self._range(request)
        by = request.query.get("by") or None
        if by is not None and by not in GROUPINGS:
            raise web.HTTPBadRequest(text=f"by must be one of {', '.join(GROUPINGS)}")
        report = await build_report(self.store, bot=bot, since=since, until=until, by=by)
        name = f"switchboard-{bot}-{since}-{until}{'-' + by if by else ''}.csv"
        return web.Response(text=to_csv(report), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"', **_HEADERS})

    # -- the page ------------------------------------------------------------------------
    async def _page(self, request: web.Request) -> web.StreamResponse:
        allowed = await self._lead_bots(request)
        bot = self._bot(request, allowed)
        since, until = self._range(request)
        period = "day" if (until - since).days < MAX_DAILY_BARS else "week"
        over_time = await build_report(self.store, bot=bot, since=since, until=until, by=period)
        tables = {by: await build_report(self.store, bot=bot, since=since, until=until, by=by) for by in TABLES}
        figures = over_time["bots"].get(bot)
        query = f"bot={escape(bot)}&amp;since={since}&amp;until={until}"
        body = [self._form(allowed, bot, since, until)]
        if figures is None:
            body.append('<p class="empty" id="no-cases">No cases in this range.</p>')
        else:
            body.append(_cards(figures))
            body.append('<section class="charts">' + "".join(_charts(figures["groups"], since, until, period))
                        + "</section>")
            for by in TABLES:
                groups = tables[by]["bots"].get(bot, {}).get("groups", {})
                body.append(f'<h2>By {by} <a class="csv" href="/desk/insights/report.csv?{query}&amp;by={by}">'
                            "CSV</a></h2>" + _table(f"by-{by}", groups))
        body.append(f'<p><a id="csv" href="/desk/insights/report.csv?{query}&amp;by=day" download>Download CSV '
                    f"(per day)</a> · the same as <code>switchboard report --bot {escape(bot)} --since {since} "
                    f"--until {until} --by day --format csv</code></p>")
        return web.Response(text=_shell(f"Insights · {bot}", "".join(body)), content_type="text/html",
                            headers=_HEADERS)

    @staticmethod
    def _form(allowed: list[str], bot: str, since: date, until: date) -> str:
        options = "".join(f'<option value="{escape(b)}"{" selected" if b == bot else ""}>{escape(b)}</option>'
                          for b in allowed)
        return ('<form class="range" method="get" action="/desk/insights">'
                f'<label>Bot<select name="bot" id="bot">{options}</select></label>'
                f'<label>From<input type="date" name="since" id="since" value="{since}"></label>'
                f'<label>To<input type="date" name="until" id="until" value="{until}"></label>'
                '<button type="submit" id="show">Show</button></form>')


def _shell(title: str, body: str) -> str:
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{escape(title)}</title><link rel="stylesheet" href="/desk/insights.css"></head>'
            f'<body><header><h1>{escape(title)}</h1><a href="/desk">Desk</a></header><main>{body}</main></body></html>')


def _cards(f: dict[str, Any]) -> str:
    cards = (
        ("cases", "Cases", _fmt(f["cases"])),
        ("containment", "Solved by the bot", _fmt(f["containment_rate"], percent=True)),
        ("handoffs", "Handed over", _fmt(f["handoffs"])),
        ("claim", "Time to claim (median)", _fmt(f["time_to_claim_seconds"]["p50"], seconds=True)),
        ("csat", "CSAT (average)", _fmt(f["csat"]["average"])),
    )
    return '<div class="cards">' + "".join(
        f'<div class="card" id="card-{key}">{escape(label)}<b>{escape(value)}</b></div>' for key, label, value in cards
    ) + "</div>"


def _periods(since: date, until: date, period: str) -> list[str]:
    days = [since + timedelta(days=i) for i in range((until - since).days + 1)]
    if period == "day":
        return [d.isoformat() for d in days]
    weeks: list[str] = []
    for d in days:
        year, week, _ = d.isocalendar()
        if not weeks or weeks[-1] != f"{year}-W{week:02d}":
            weeks.append(f"{year}-W{week:02d}")
    return weeks


def _charts(groups: dict[str, Any], since: date, until: date, period: str) -> list[str]:
    keys = _periods(since, until, period)
    labels = [k[5:] if period == "day" else k for k in keys]  # MM-DD keeps the axis readable

    def pick(path: Sequence[str]) -> list[float | None]:
        values: list[float | None] = []
        for key in keys:
            value: Any = groups.get(key)
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            values.append(value)
        return values

    reasons = sorted({r for g in groups.values() for r, n in g["handoffs_by_reason"].items() if n})
    totals: dict[str, int] = {}
    for g in groups.values():
        for score, n in g["csat"]["distribution"].items():
            totals[score] = totals.get(score, 0) + n
    charts = [
        ("chart-containment", "Containment (share of cases the bot solved alone)",
         bar_chart("svg-containment", "Containment per " + period, labels,
                   [Series("containment", pick(("containment_rate",)))], y_max=1.0)),
        ("chart-handoffs", "Handoffs by reason",
         bar_chart("svg-handoffs", "Handoffs by reason per " + period, labels,
                   [Series(r, pick(("handoffs_by_reason", r)), COLOURS[i % len(COLOURS)])
                    for i, r in enumerate(reasons)] or [Series("handoffs", pick(("handoffs",)))], stacked=True)),
        ("chart-waiting", "Waiting for a person (seconds)",
         bar_chart("svg-waiting", "Waiting times per " + period, labels,
                   [Series("claim p50", pick(("time_to_claim_seconds", "p50")), COLOURS[0]),
                    Series("claim p90", pick(("time_to_claim_seconds", "p90")), COLOURS[1]),
                    Series("first reply p50", pick(("time_to_first_reply_seconds", "p50")), COLOURS[2])], unit="s")),
        ("chart-csat", "CSAT average",
         bar_chart("svg-csat", "CSAT average per " + period, labels,
                   [Series("average", pick(("csat", "average")), COLOURS[2])], y_max=5.0)),
        ("chart-csat-distribution", "CSAT ratings",
         bar_chart("svg-csat-distribution", "CSAT ratings, 1 to 5", [str(s) for s in range(1, 6)],
                   [Series("ratings", [float(totals.get(str(s), 0)) for s in range(1, 6)], COLOURS[4])])),
    ]
    return [f'<figure id="{fid}"><figcaption>{escape(caption)}</figcaption>{svg}</figure>'
            for fid, caption, svg in charts]


def _table(table_id: str, groups: dict[str, Any]) -> str:
    if not groups:
        return f'<p class="empty" id="{table_id}">No cases.</p>'
    head = ("group", "cases", "bot only", "containment", "handoffs", "claim p50", "first reply p50", "handle p50",
            "CSAT", "ratings", "fallback rate", "dead letters")
    rows = []
    for key, f in groups.items():
        cells = (key, _fmt(f["cases"]), _fmt(f["bot_only"]), _fmt(f["containment_rate"], percent=True),
                 _fmt(f["handoffs"]), _fmt(f["time_to_claim_seconds"]["p50"], seconds=True),
                 _fmt(f["time_to_first_reply_seconds"]["p50"], seconds=True),
                 _fmt(f["handle_time_seconds"]["p50"], seconds=True), _fmt(f["csat"]["average"]),
                 _fmt(f["csat"]["responses"]), _fmt(f["fallback_rate"], percent=True), _fmt(f["dead_letters"]))
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return (f'<table id="{table_id}"><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
