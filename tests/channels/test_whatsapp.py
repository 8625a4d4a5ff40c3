"""WhatsApp adapter: the contract kit, every fixture, webhook routes and sends against the fake Graph API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.testing import AdapterContract, RecordingContext, SentMessage, mounted
from channels.whatsapp import WhatsAppAdapter, map_graph_error
from core.errors import (
    BadRequest,
    ConfigError,
    OutsideServiceWindow,
    RateLimited,
    RecipientUnavailable,
    TransientError,
    Unauthorized,
)
from core.model import Attachment, Button, DeliveryReceipt, DeliveryStatus, Inbound, Outbound
from tests.fakes.whatsapp_api import (
    FakeWhatsAppAPI,
    graph_error_body,
    post_webhook,
    sign,
    status_webhook,
    text_webhook,
)

FIXTURES = Path("/work/shared/fixtures/platforms/whatsapp")
TOKEN = "EAAG-test-token"
APP_SECRET = "app-s3cret"
PHONE_ID = "106540352242922"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def config(fake_url: str = "http://127.0.0.1:9", **overrides: Any) -> dict[str, Any]:
    return {"access_token": TOKEN, "app_secret": APP_SECRET, "verify_token": "verify-me",
            "phone_number_id": PHONE_ID, "api_base": fake_url, "api_version": "v21.0", "timeout": 2.0, **overrides}


class WhatsAppProbe:
    def __init__(self, fake: FakeWhatsAppAPI) -> None:
        self.fake = fake

    def sent(self) -> list[SentMessage]:
        out = []
        for body in self.fake.messages():
            if body["type"] == "text":
                out.append(SentMessage(body["to"], body["text"]["body"]))
            elif body["type"] == "interactive":
                inter = body["interactive"]
                if inter["type"] == "button":
                    titles = tuple(b["reply"]["title"] for b in inter["action"]["buttons"])
                else:
                    titles = tuple(r.get("description", r["title"]) for s in inter["action"]["sections"] for r in s["rows"])
                out.append(SentMessage(body["to"], inter["body"]["text"], titles))
            else:
                out.append(SentMessage(body["to"], "", ()))
        return out

    def request_count(self) -> int:
        return self.fake.count()

    def fail_next(self, kind: str) -> float | None:
        code = {"rate_limited": 130429, "unauthorized": 190, "recipient_unavailable": 131026,
                "bad_request": 131009, "transient": 131000}[kind]
        self.fake.fail_next(1, code=code)
        return 1.0 if kind == "rate_limited" else None


@pytest.fixture
async def fake() -> AsyncIterator[FakeWhatsAppAPI]:
    async with FakeWhatsAppAPI(TOKEN, PHONE_ID) as api:
        yield api


SHEENA = {"bot": "nordhost", "channel": "whatsapp", "channel_user_id": "16505551234", "chat_id": "16505551234",
              "shared_phone": "16505551234", "display_name": "Sheena Nelson"}


class TestWhatsAppContract(AdapterContract):
    chat_id = "16505551234"
    max_choices = 10  # 3 reply buttons, then a list of up to 10 rows

    @pytest.fixture
    async def adapter(self, fake: FakeWhatsAppAPI, context: RecordingContext) -> AsyncIterator[WhatsAppAdapter]:
        adapter = WhatsAppAdapter.from_config("nordhost", config(fake.url), context)
        await adapter.start()
        yield adapter
        await adapter.stop()

    @pytest.fixture
    def platform(self, fake: FakeWhatsAppAPI) -> WhatsAppProbe:
        return WhatsAppProbe(fake)

    @pytest.fixture
    def sign(self) -> Callable[[bytes], Mapping[str, str]]:
        return lambda body: sign(body, APP_SECRET)

    @pytest.fixture
    def payload_cases(self) -> list[tuple[dict[str, Any], Any]]:
        wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
        return [
            (load("official/wa_message_text.json"), (Inbound(
                **SHEENA, platform_message_id=f"whatsapp:{wamid}", text="Does it come in another color?",
                timestamp=datetime.fromtimestamp(1749416383, UTC)),)),
            (load("official/wa_message_interactive_button_reply.json"), (Inbound(
                **SHEENA, platform_message_id="whatsapp:wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTZBQzg0MzQ4QjRCM0NGNkVGOAA=",
                text="Cancel", button_payload="cancel-button", timestamp=datetime.fromtimestamp(1750025136, UTC)),)),
            (load("official/wa_message_image.json"), (Inbound(
                **SHEENA, platform_message_id=f"whatsapp:{wamid}", text="Taj Mahal",
                attachments=(Attachment(kind="image", file_id="1003383421387256", mime_type="image/jpeg",
                                        caption="Taj Mahal"),),
                timestamp=datetime.fromtimestamp(1744344496, UTC)),)),
            (load("official/wa_message_unsupported.json"), (Inbound(
                **SHEENA, platform_message_id="whatsapp:wamid.HBgLMTQyMDU1NTA3NDkVAgASGBI5N0MwRjg0RTVBNUI1RDA2OTkA",
                attachments=(Attachment(kind="unsupported", name="Message type unknown"),),
                timestamp=datetime.fromtimestamp(1750090702, UTC)),)),
            (load("official/wa_message_reaction.json"), None),
        ]


# -- every fixture file -------------------------------------------------------------------------
# file -> ("message", text, payload, attachment kinds) | ("receipt", status, has_error) | ("ignored", reason part) | "api"
EXPECTED: dict[str, Any] = {
    "button_button.json": ("message", "title", "callback_data", ()),
    "button_quick_reply.json": ("message", "title", "callback_data", ()),
    "button_quick_reply_without_context.json": ("message", "title", "callback_data", ()),
    "list_reply_callback.json": ("message", "title", "callback_data", ()),
    "list_reply_description.json": ("message", "title", "callback_data", ()),
    "message_animated_sticker.json": ("message", "", None, ("sticker",)),
    "message_audio.json": ("message", "", None, ("audio",)),
    "message_chosen_location.json": ("message", "", None, ("location",)),
    "message_contacts.json": ("message", "", None, ("contact", "contact", "contact")),
    "message_current_location.json": ("message", "", None, ("location",)),
    "message_document.json": ("message", "caption", None, ("document",)),
    "message_forwarded.json": ("message", "forwarded text", None, ()),
    "message_forwarded_many_times.json": ("message", "text forwarded many times", None, ()),
    "message_image.json": ("message", "", None, ("image",)),
    "message_interactive_message_with_err.json": ("ignored", "interactive"),
    "message_media_with_url.json": ("message", "", None, ("image",)),
    "message_order.json": ("message", "", None, ("order",)),
    "message_reaction.json": ("ignored", "reaction"),
    "message_referral.json": ("message", "BODY", None, ()),
    "message_reply.json": ("message", "replied text", None, ()),
    "message_static_sticker.json": ("message", "", None, ("sticker",)),
    "message_text.json": ("message", "Body Text", None, ()),
    "message_unreaction_empty.json": ("ignored", "reaction"),
    "message_unreaction_no_emoji.json": ("ignored", "reaction"),
    "message_unsupported.json": ("message", "", None, ("unsupported",)),
    "message_unsupported_with_type.json": ("message", "", None, ("unsupported",)),
    "message_video.json": ("message", "caption", None, ("video",)),
    "message_voice.json": ("message", "", None, ("voice",)),
    "status_delivered.json": ("receipt", DeliveryStatus.DELIVERED, False),
    "status_failed.json": ("receipt", DeliveryStatus.FAILED, True),
    "status_group.json": ("receipt", DeliveryStatus.READ, False),
    "status_played.json": ("receipt", DeliveryStatus.READ, False),
    "status_read.json": ("receipt", DeliveryStatus.READ, False),
    "status_sent.json": ("receipt", DeliveryStatus.SENT, False),
    "status_with_tracker.json": ("receipt", DeliveryStatus.SENT, False),
    "official/wa_message_contacts.json": ("message", "", None, ("contact",)),
    "official/wa_message_image.json": ("message", "Taj Mahal", None, ("image",)),
    "official/wa_message_interactive_button_reply.json": ("message", "Cancel", "cancel-button", ()),
    "official/wa_message_interactive_list_reply.json": ("message", "Priority Mail Express", "priority_express", ()),
    "official/wa_message_location.json": ("message", "", None, ("location",)),
    "official/wa_message_reaction.json": ("ignored", "reaction"),
    "official/wa_message_template_quick_reply_button.json": ("message", "Unsubscribe", "Unsubscribe", ()),
    "official/wa_message_text.json": ("message", "Does it come in another color?", None, ()),
    "official/wa_message_text_with_context.json": ("message", "Is this still available?", None, ()),
    "official/wa_message_unsupported.json": ("message", "", None, ("unsupported",)),
    "official/wa_status_delivered.json": ("receipt", DeliveryStatus.DELIVERED, False),
    "official/wa_status_failed.json": ("receipt", DeliveryStatus.FAILED, True),
    "official/wa_status_read.json": ("receipt", DeliveryStatus.READ, False),
    "official/wa_status_sent.json": ("receipt", DeliveryStatus.SENT, False),
    "official/wa_webhook_errors_130429.json": ("ignored", "130429"),
    "official/wa_send_error_131056_response.ADAPTED.json": "api",
    "official/wa_send_list_request.json": "api",
    "official/wa_send_message_response.json": "api",
    "official/wa_send_read_and_typing_request.json": "api",
    "official/wa_send_read_and_typing_response.json": "api",
    "official/wa_send_reply_buttons_request.json": "api",
    "official/wa_send_template_request.json": "api",
    "official/wa_send_text_request.json": "api",
}
ALL_FILES = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.json"))


def test_every_fixture_file_has_an_expectation() -> None:
    assert sorted(EXPECTED) == ALL_FILES


def wrapped(name: str) -> dict[str, Any]:
    """pywa's files are bare ``value`` objects... or full envelopes; always return the envelope."""
    data = load(name)
    return data if "object" in data else {"object": "whatsapp_business_account",
                                          "entry": [{"id": "1", "changes": [{"field": "messages", "value": data}]}]}


@pytest.mark.parametrize("name", [n for n in ALL_FILES if EXPECTED[n] != "api"])
def test_fixture_webhook_parses_to_expected_result(name: str) -> None:
    payload = wrapped(name)
    value = payload["entry"][0]["changes"][0]["value"]
    adapter = WhatsAppAdapter.from_config("nordhost", config(phone_number_id=value["metadata"]["phone_number_id"]),
                                          RecordingContext())
    parsed = adapter.parse(payload)
    expected = EXPECTED[name]
    if expected[0] == "ignored":
        assert not parsed.messages and not parsed.receipts
        assert any(expected[1] in reason for reason in parsed.ignored), parsed.ignored
    elif expected[0] == "receipt":
        [receipt] = parsed.receipts
        assert receipt.status is expected[1] and (receipt.error is not None) == expected[2]
        assert receipt.platform_message_id == f"whatsapp:{value['statuses'][0]['id']}"
        assert receipt.timestamp == datetime.fromtimestamp(int(value["statuses"][0]["timestamp"]), UTC)
        assert not parsed.messages
    else:
        _, text, button, kinds = expected
        [message] = parsed.messages
        raw = value["messages"][0]
        assert (message.text, message.button_payload, tuple(a.kind for a in message.attachments)) == (text, button, kinds)
        assert message.platform_message_id == f"whatsapp:{raw['id']}"
        assert message.chat_id == message.channel_user_id == message.shared_phone == raw["from"]
        assert message.timestamp == datetime.fromtimestamp(int(raw["timestamp"]), UTC)


def test_failed_status_carries_the_error_code() -> None:
    adapter = WhatsAppAdapter.from_config("nordhost", config(phone_number_id="1122334455667"), RecordingContext())
    [receipt] = adapter.parse(load("official/wa_status_failed.json")).receipts
    assert receipt == DeliveryReceipt("nordhost", "whatsapp", "whatsapp:wamid.xyzxyz", DeliveryStatus.FAILED,
                                      datetime.fromtimestamp(1689380458, UTC),
                                      "130472: User's number is part of an experiment")


def test_message_for_another_phone_number_is_ignored() -> None:
    adapter = WhatsAppAdapter.from_config("nordhost", config(phone_number_id="999"), RecordingContext())
    parsed = adapter.parse(load("official/wa_message_text.json"))
    assert parsed.messages == () and parsed.ignored == ("addressed to another phone number",)


@pytest.mark.parametrize(("code", "status", "error"), [
    (130429, 429, RateLimited), (131056, 400, RateLimited), (4, 400, RateLimited), (80007, 400, RateLimited),
    (131047, 400, OutsideServiceWindow), (131026, 400, RecipientUnavailable), (131051, 400, BadRequest),
    (190, 401, Unauthorized), (131000, 500, TransientError), (2, 503, TransientError), (131009, 400, BadRequest),
])
def test_graph_error_codes_map_to_core_errors(code: int, status: int, error: type[Exception]) -> None:
    http_status, body = graph_error_body(code)
    assert http_status == status
    assert type(map_graph_error(http_status, body)) is error


def test_pair_rate_limit_fixture_waits_six_seconds() -> None:
    mapped = map_graph_error(400, load("official/wa_send_error_131056_response.ADAPTED.json"))
    assert isinstance(mapped, RateLimited) and mapped.retry_after == 6.0


def test_fake_error_body_has_the_graph_shape_of_the_fixture() -> None:
    fixture = load("official/wa_send_error_131056_response.ADAPTED.json")["error"]
    _, body = graph_error_body(131056, subcode=2494071)
    assert set(body["error"]) == set(fixture) and body["error"]["code"] == fixture["code"]
    assert body["error"]["message"] == fixture["message"] and body["error"]["error_data"] == fixture["error_data"]


def test_html_gateway_error_is_transient() -> None:
    assert isinstance(map_graph_error(502, None), TransientError)


# -- webhook routes ---------------------------------------------------------------------------
async def test_verification_handshake_echoes_challenge_only_with_the_right_token() -> None:
    adapter = WhatsAppAdapter.from_config("nordhost", config(), RecordingContext())
    async with mounted(adapter) as client:
        ok = await client.get("/webhooks/nordhost/whatsapp", params={
            "hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"})
        assert ok.status == 200 and await ok.text() == "1158201444"
        bad = await client.get("/webhooks/nordhost/whatsapp", params={
            "hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"})
        assert bad.status == 403


async def test_forged_whatsapp_signature_is_401_and_nothing_reaches_the_core() -> None:
    context = RecordingContext()
    adapter = WhatsAppAdapter.from_config("nordhost", config(), context)
    async with mounted(adapter) as client:
        url = str(client.make_url("/webhooks/nordhost/whatsapp"))
        assert await post_webhook(url, text_webhook("491701234567", "hi"), app_secret="wrong-secret") == 401
        body = json.dumps(text_webhook("491701234567", "hi")).encode()
        tampered = body.replace(b"hi", b"yo")
        r = await client.post("/webhooks/nordhost/whatsapp", data=tampered, headers=sign(body, APP_SECRET))
        assert r.status == 401
    assert context.accepted == []


async def test_signed_statuses_become_delivery_receipts() -> None:
    context = RecordingContext()
    adapter = WhatsAppAdapter.from_config("nordhost", config(), context)
    async with mounted(adapter) as client:
        url = str(client.make_url("/webhooks/nordhost/whatsapp"))
        assert await post_webhook(url, status_webhook("wamid.OUT1", "delivered"), app_secret=APP_SECRET) == 200
        assert await post_webhook(url, status_webhook("wamid.OUT1", "failed", error_code=131026),
                                  app_secret=APP_SECRET) == 200
    receipts = [r for p in context.accepted for r in p.receipts]
    assert [(r.platform_message_id, r.status) for r in receipts] == [
        ("whatsapp:wamid.OUT1", DeliveryStatus.DELIVERED), ("whatsapp:wamid.OUT1", DeliveryStatus.FAILED)]
    assert receipts[1].error is not None and receipts[1].error.startswith("131026")


async def test_structurally_broken_webhook_is_400_never_5xx() -> None:
    context = RecordingContext()
    adapter = WhatsAppAdapter.from_config("nordhost", config(), context)
    async with mounted(adapter) as client:
        url = str(client.make_url("/webhooks/nordhost/whatsapp"))
        broken = {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",
                                                                                  "value": {"messages": [{"id": 5}]}}]}]}
        assert await post_webhook(url, broken, app_secret=APP_SECRET) == 400
    assert context.accepted == []


# -- sending ----------------------------------------------------------------------------------
def out(text: str = "Hi", **kw: Any) -> Outbound:
    return Outbound("conv", "nordhost", "whatsapp", "491701234567", text=text, **kw)


async def test_text_send_matches_the_official_request_shape(fake: FakeWhatsAppAPI) -> None:
    adapter = WhatsAppAdapter.from_config("nordhost", config(fake.url), RecordingContext())
    message_id = await adapter.send(out("text-message-content"))
    await adapter.stop()
    reference = load("official/wa_send_text_request.json")
    [body] = fake.messages()
    assert body == {**reference, "to": "491701234567"}
    assert message_id.startswith("whatsapp:wamid.")
    assert fake.requests[0].authorization == f"Bearer {TOKEN}"
    assert fake.requests[0].path == f"/v21.0/{PHONE_ID}/messages"


async def test_three_buttons_are_reply_buttons_like_the_official_request(fake: FakeWhatsAppAPI) -> None:
    adapter = WhatsAppAdapter.from_config("nordhost", config(fake.url), RecordingContext())
    await adapter.send(out("Continue?", buttons=(Button("Yes", "/affirm"), Button("No", "/deny"), Button("Agent", "/human"))))
    await adapter.stop()
    [body] = fake.messages()
    reference = load("official/wa_send_reply_buttons_request.json")
    assert set(body) == set(reference) and body["interactive"]["type"] == "button"
    assert body["interactive"]["action"]["buttons"][2] == {"type": "reply", "reply": {"id": "/human", "title": "Agent"}}


async def test_four_to_ten_buttons_become_a_list_message(fake: FakeWhatsAppAPI) -> None:
    adapter = WhatsAppAdapter.from_config("nordhost", config(fake.url), RecordingContext())
    buttons = tuple(Button(f"Option number {i} with a long title", f"/o{i}") for i in range(5))
    await adapter.send(out("Pick", buttons=buttons))
    await adapter.stop()
    [body] = fake.messages()
    inter = body["interactive"]
    assert inter["type"] == "list" and inter["action"]["button"] == "Options"
    rows = inter["action"]["sections"][0]["rows"]
    assert len(rows) == 5 and all(len(r["title"]) <= 24 for r in rows)
    assert rows[0]["description"] == "Option number 0 with a long title"


async def test_template_message_is_sent_when_the_core_asks_for_it(fake: FakeWhatsAppAPI) -> None:
    adapter = WhatsAppAdapter.from_config("nordhost", config(fake.url, template_language="de"), RecordingContext())
    fake.close_window("491701234567")
    with pytest.raises(OutsideServiceWindow):
        await adapter.send(out("free form"))
    await adapter.send(out("", template="reengage"))
    await adapter.stop()
    body = fake.messages()[-1]
    assert body["type"] == "template" and body["template"] == {"name": "reengage", "language": {"code": "de"}}


def test_service_window_closes_after_24_hours() -> None:
    adapter = WhatsAppAdapter.from_config("nordhost", config(), RecordingContext())
    assert adapter.in_service_window(23 * 3600) and not adapter.in_service_window(24 * 3600 + 1)


async def test_mark_read_sends_read_receipt_with_typing_indicator(fake: FakeWhatsAppAPI) -> None:
    adapter = WhatsAppAdapter.from_config("nordhost", config(fake.url), RecordingContext())
    [inbound] = adapter.parse(text_webhook("491701234567", "hi", wamid="wamid.ABC")).messages
    await adapter.mark_read(inbound)
    await adapter.after_accept({}, adapter.parse(text_webhook("491701234567", "hi", wamid="wamid.DEF")))
    await adapter.typing("491701234567")
    await adapter.typing("000")  # no message known: nothing to show
    await adapter.stop()
    reference = load("official/wa_send_read_and_typing_request.json")
    assert fake.receipts() == [{**reference, "message_id": "wamid.ABC"}, {**reference, "message_id": "wamid.DEF"}]


async def test_wrong_access_token_is_unauthorized(fake: FakeWhatsAppAPI) -> None:
    adapter = WhatsAppAdapter.from_config("nordhost", config(fake.url, access_token="bad"), RecordingContext())
    with pytest.raises(Unauthorized):
        await adapter.send(out())
    await adapter.stop()


async def test_timeout_and_unreachable_platform_are_transient(fake: FakeWhatsAppAPI) -> None:
    fake.hang_seconds = 3
    fake.fail_next(1, code=None)
    adapter = WhatsAppAdapter.from_config("nordhost", config(fake.url, timeout=0.3), RecordingContext())
    with pytest.raises(TransientError):
        await adapter.send(out())
    await adapter.stop()
    dead = WhatsAppAdapter.from_config("nordhost", config("http://127.0.0.1:9"), RecordingContext())
    with pytest.raises(TransientError):
        await dead.send(out())
    await dead.stop()


async def test_fake_requires_bearer_and_answers_graph_error(fake: FakeWhatsAppAPI) -> None:
    async with aiohttp.ClientSession() as session, \
            session.post(f"{fake.url}/v21.0/{PHONE_ID}/messages", json={"messaging_product": "whatsapp"}) as r:
        body = await r.json()
        assert r.status == 401 and body["error"]["code"] == 190 and body["error"]["type"] == "OAuthException"


def test_config_normalises_api_version_and_rejects_unknown_keys() -> None:
    adapter = WhatsAppAdapter.from_config("nordhost", config(api_version="22.0"), RecordingContext())
    assert adapter.messages_url.endswith(f"/v22.0/{PHONE_ID}/messages")
    with pytest.raises(ConfigError, match="bots.nordhost.channels.whatsapp"):
        WhatsAppAdapter.from_config("nordhost", {**config(), "tokn": "x"}, RecordingContext())


# -- fuzzing --------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(["id", "from", "type", "timestamp", "text", "body", "interactive", "button_reply", "title",
                        "image", "caption", "status", "errors", "code", "statuses", "messages", "contacts", "wa_id"])
item = st.dictionaries(keys, json_values | st.dictionaries(keys, json_values, max_size=4), max_size=6)
value = st.fixed_dictionaries({}, optional={
    "metadata": st.just({"phone_number_id": PHONE_ID}) | json_values,
    "messages": st.lists(item, max_size=3) | json_values,
    "statuses": st.lists(item, max_size=3) | json_values,
    "contacts": st.lists(item, max_size=2), "errors": st.lists(item, max_size=2),
})
envelope = st.fixed_dictionaries({
    "object": st.just("whatsapp_business_account"),
    "entry": st.lists(st.fixed_dictionaries({"changes": st.lists(
        st.fixed_dictionaries({"field": st.just("messages"), "value": value | json_values}), max_size=2)}), max_size=2)
    | json_values,
})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.one_of(envelope, st.dictionaries(st.text(max_size=10), json_values, max_size=5)))
def test_parse_never_raises_anything_but_bad_request(payload: dict[str, Any]) -> None:
    adapter = WhatsAppAdapter.from_config("fuzz", config(), RecordingContext())
    try:
        adapter.parse(payload)
    except BadRequest:
        pass


def _one_message(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": PHONE_ID},
        "messages": [{"from": "16505551234", "id": "wamid.NEW", "timestamp": "1750090702", "type": kind,
                      kind: body}]}}]}]}


def test_edit_revoke_and_number_change_parse_to_versions_and_an_identity_move() -> None:
    adapter = WhatsAppAdapter.from_config("nordhost", config(), RecordingContext())
    [edit] = adapter.parse(_one_message("edit", {"original_message_id": "wamid.OLD", "message": {
        "type": "text", "text": {"body": "fixed typo"}}})).messages
    assert (edit.platform_message_id, edit.text, edit.edited) == ("whatsapp:edit:wamid.OLD:wamid.NEW", "fixed typo", True)
    [revoke] = adapter.parse(_one_message("revoke", {"original_message_id": "wamid.OLD"})).messages
    assert (revoke.platform_message_id, revoke.text, revoke.edited) == ("whatsapp:revoke:wamid.OLD:wamid.NEW", "", True)
    [system] = adapter.parse(_one_message("system", {"body": "User A changed from 16505551234 to 16505559999",
                                                     "new_wa_id": "16505559999",
                                                     "type": "user_changed_number"})).messages
    assert system.attachments == (Attachment(kind="number_changed", url="tel:+16505559999", file_id="16505559999",
                                             name="User A changed from 16505551234 to 16505559999"),)
    assert adapter.parse(_one_message("system", {"type": "user_identity_changed"})).ignored


async def test_mark_read_sends_read_and_typing_and_respects_the_switches() -> None:
    async with FakeWhatsAppAPI(TOKEN, PHONE_ID) as api:
        message = Inbound(**SHEENA, platform_message_id="whatsapp:wamid.A", text="hi")
        on = WhatsAppAdapter.from_config("nordhost", config(api.url), RecordingContext())
        quiet = WhatsAppAdapter.from_config("nordhost", config(api.url, typing_indicator=False), RecordingContext())
        off = WhatsAppAdapter.from_config("nordhost", config(api.url, read_receipts=False), RecordingContext())
        try:
            await on.mark_read(message)
            await quiet.mark_read(message)
            await off.mark_read(message)
        finally:
            for adapter in (on, quiet, off):
                await adapter.stop()
        assert api.receipts() == [
            {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.A",
             "typing_indicator": {"type": "text"}},
            {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.A"},
        ]
