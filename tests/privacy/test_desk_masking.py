"""E-mail addresses and phone numbers in customer text reach Slack masked (card and thread);
the reveal endpoint answers only logged-in agents of the bot and audits every reveal."""

from __future__ import annotations

import aiohttp

from tests.fakes.slack_api import AGENTS_CHANNEL
from tests.handoff.handoff_support import PASSWORDS, Customer, conversation_of
from tests.privacy.test_slack_erasure import everything_slack_holds, slack_farm

DESK = {"X-Desk-Request": "1"}


async def test_slack_shows_contact_details_masked_and_the_web_desk_reveals_only_to_agents(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with slack_farm(tmp_path, admin=False) as (slack, farm, http):
        customer = await Customer.connect(http, farm.url)
        await customer.say("Mitarbeiter bitte, meine Mail ist jana.k@example.de")
        await farm.farm.settle()
        await customer.say("Oder ruft an: 0341 12345678")
        await farm.farm.settle()
        held = everything_slack_holds(slack)
        assert "j•••@•••.de" in held and "•••••••78" in held
        assert "jana.k@example.de" not in held and "12345678" not in held
        assert slack.posted(AGENTS_CHANNEL)

        conversation = await conversation_of(farm, customer)
        seq = max(e.seq for e in await farm.store.transcript(conversation.id) if e.type == "user")
        url = f"{farm.url}/desk/api/reveal/{conversation.id}/{seq}/0"
        async with http.post(url, headers=DESK) as response:
            assert response.status == 401  # not logged in
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as agent:
            async with agent.post(f"{farm.url}/desk/api/login", headers=DESK,
                                  json={"agent": "carl", "password": PASSWORDS["carl"]}) as response:
                assert response.status == 200
            async with agent.post(url, headers=DESK) as response:
                assert response.status == 401  # Carl serves another bot
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as agent:
            async with agent.post(f"{farm.url}/desk/api/login", headers=DESK,
                                  json={"agent": "anna", "password": PASSWORDS["anna"]}) as response:
                assert response.status == 200
            async with agent.post(url) as response:
                assert response.status == 403  # no CSRF header
            async with agent.post(url, headers=DESK) as response:
                assert response.status == 200 and (await response.json()) == {"value": "0341 12345678",
                                                                                "kind": "phone"}
        reveals = [a for a in await farm.store.audit_log(bot="demo") if a.action == "reveal"]
        assert [(a.actor, a.target, a.detail) for a in reveals] == [
            ("web:anna", conversation.id, {"seq": seq, "index": 0, "kind": "phone"})]
