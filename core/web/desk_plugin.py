"""The built-in web desk as a `core.handoff.wiring.DeskPlugin`: ``/desk`` for the agents in farm.yml."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from core.analytics.insights import InsightsPage
from core.desk_config import CannedReply, WebDeskConfig
from core.files import FileStore
from core.handoff.service import HandoffService
from core.handoff.wiring import DeskParts
from core.pipeline.dead_letters import DeadLetters
from core.plugins import PluginContext
from core.privacy.masking import contact_details
from core.web.desk import WebDesk
from core.web.desk_files import DeskFiles
from core.web.desk_reveal import RevealRoutes

log = structlog.get_logger(__name__)


class WebDeskPlugin:
    name = "web"

    def __init__(self, config: WebDeskConfig, canned: Sequence[CannedReply] = ()) -> None:
        self.config = config
        self.canned = canned
        self.desk: WebDesk | None = None  # once built: other desk pages (the review page) sign agents in with it

    def build(self, ctx: PluginContext, handoff: HandoffService, dead_letters: DeadLetters,
              files: FileStore) -> DeskParts:
        desk = WebDesk(self.config, handoff, ctx.store, dead_letters=dead_letters, canned=self.canned,
                       channel_for=ctx.channels.channel)  # agent typing goes to the customer's adapter
        self.desk = desk
        if not self.config.agents:
            log.warning("handoff.web_desk_without_agents", hint="add desk.web.agents to farm.yml")
        insights = InsightsPage(desk, ctx.store, ctx.bots)  # the team leads' figures, behind the desk's login
        routes = (*desk.routes(),
                  *DeskFiles(desk, handoff, files).routes(),  # attachments both ways
                  *RevealRoutes(ctx.store, desk, contact_details).routes(),  # audited reveal of masked contacts
                  *insights.routes())
        return DeskParts(desk, provides="web_desk", routes=routes, services=(desk,),
                         on_http_shutdown=(desk.on_app_shutdown,),  # live-update streams end before the server waits
                         agent_login=desk)
