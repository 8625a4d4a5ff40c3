"""Hostile input on every webhook route: random JSON, broken fields, huge fields, bad
encodings, missing/forged/valid signatures. Never a 5xx, the app stays healthy, and a
request that is not acknowledged (anything but 200) leaves nothing in the store."""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.load import TG_SECRET, WA_PHONE, WA_SECRET
from tests.fakes.slack_api import (
    AGENTS_CHANNEL,
    SIGNING_SECRET,
    event_callback,
    message_event,
    signed_headers,
)
from tests.fakes.telegram_api import callback_update, text_update
from tests.fakes.whatsapp_api import sign, status_webhook, text_webhook
from tests.fuzz.conftest import FuzzFarm
from tests.fuzz.strategies import DEEPLY_NESTED, NOT_UTF8, bad_bodies, encode, json_values, mutated

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

FUZZ = settings(
    max_examples=60, deadline=None, derandomize=False, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
TELEGRAM = "/webhooks/demo/telegram"
WHATSAPP = "/webhooks/demo/whatsapp"
SLACK = "/slack/events"


async def check(farm: FuzzFarm, method: str, path: str, body: bytes, headers: dict[str, str]) -> int:
    """One hostile request; the invariants every route must keep."""
    before = farm.stored()
    status, _ = await farm.request(method, path, body, headers)
    assert status < 500, f"{method} {path} answered {status}"
    if status == 200:
        await farm.quiesce()  # what it accepted is processed before the next example
    else:
        assert farm.stored() == before, f"{status} for a rejected request, yet something was stored"
    assert await farm.healthy()
    return status


telegram_bodies = st.one_of(
    mutated(text_update(4242, "hello", update_id=1)).map(encode),
    mutated(callback_update(4242, "/affirm", update_id=2)).map(encode),
    json_values.map(encode),
    bad_bodies,
)


@FUZZ
@given(body=telegram_bodies, secret=st.sampled_from(["right", "wrong", "missing", "empty"]))
async def test_telegram_webhook_survives_hostile_input(fuzz_farm: FuzzFarm, body: bytes, secret: str) -> None:
    headers = {"Content-Type": "application/json"}
    if secret != "missing":
        headers["X-Telegram-Bot-Api-Secret-Token"] = {"right": TG_SECRET, "wrong": "nope", "empty": ""}[secret]
    status = await check(fuzz_farm, "POST", TELEGRAM, body, headers)
    if secret != "right":
        assert status == 403


whatsapp_bodies = st.one_of(
    mutated(text_webhook("491701234567", "hallo", phone_number_id=WA_PHONE)).map(encode),
    mutated(status_webhook("wamid.HBgLNDkxNzAxMjM0NTY3", "delivered", phone_number_id=WA_PHONE)).map(encode),
    json_values.map(encode),
    bad_bodies,
)


def whatsapp_headers(body: bytes, kind: str) -> dict[str, str]:
    if kind == "valid":
        return sign(body, WA_SECRET)
    headers = {"Content-Type": "application/json"}
    if kind == "other-secret":
        headers.update(sign(body, "not-the-app-secret"))
    elif kind == "malformed":
        headers["X-Hub-Signature-256"] = "sha1=deadbeef"
    elif kind == "other-body":
        headers.update(sign(body + b" ", WA_SECRET))
    return headers


@FUZZ
@given(body=whatsapp_bodies, signature=st.sampled_from(["valid", "other-secret", "malformed", "missing",
                                                           "other-body"]))
async def test_whatsapp_webhook_survives_hostile_input(fuzz_farm: FuzzFarm, body: bytes, signature: str) -> None:
    status = await check(fuzz_farm, "POST", WHATSAPP, body, whatsapp_headers(body, signature))
    if signature != "valid":
        assert status == 401


query_values = st.one_of(st.text(max_size=60), st.just("bench"), st.just("subscribe"), st.just(""))


@FUZZ
@given(params=st.dictionaries(st.sampled_from(["hub.mode", "hub.verify_token", "hub.challenge", "x"]),
                              query_values, max_size=4))
async def test_whatsapp_verification_survives_hostile_queries(fuzz_farm: FuzzFarm, params: dict[str, str]) -> None:
    before = fuzz_farm.stored()
    path = f"{WHATSAPP}?{urllib.parse.urlencode(params)}"
    status, body = await fuzz_farm.request("GET", path)
    assert status < 500
    good = params.get("hub.mode") == "subscribe" and params.get("hub.verify_token") == "bench"
    assert status == (200 if good else 403)
    if good:
        assert body.decode() == params.get("hub.challenge", "")
    assert fuzz_farm.stored() == before


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


slack_bodies = st.one_of(
    mutated(event_callback(message_event("hi", channel=AGENTS_CHANNEL, thread_ts="1763820100.000100"))).map(encode),
    json_values.map(encode),
    st.text(max_size=200).map(lambda t: urllib.parse.urlencode({"payload": t}).encode()),
    bad_bodies.filter(lambda b: _is_utf8(b)),  # other bytes: test_slack_body_that_is_not_utf8...
)


def slack_headers(body: bytes, when: str, signature: str) -> dict[str, str]:
    now = int(time.time())
    ts = {"now": now, "stale": now - 301, "future": now + 301}.get(when, now)
    headers = signed_headers(body, SIGNING_SECRET if signature == "valid" else "wrong-secret", timestamp=ts)
    if when == "garbage":
        headers["X-Slack-Request-Timestamp"] = "yesterday"
    if signature == "missing":
        del headers["X-Slack-Signature"]
    return headers


@FUZZ
@given(body=slack_bodies, when=st.sampled_from(["now", "stale", "future", "garbage"]),
       signature=st.sampled_from(["valid", "forged", "missing"]))
async def test_slack_events_survive_hostile_input(fuzz_farm: FuzzFarm, body: bytes, when: str, signature: str) -> None:
    status = await check(fuzz_farm, "POST", SLACK, body, slack_headers(body, when, signature))
    if signature != "valid" or when != "now":
        assert status == 401


@pytest.mark.parametrize("path", [TELEGRAM, WHATSAPP, SLACK])
async def test_body_over_the_size_limit_is_refused_with_413_and_not_stored(fuzz_farm: FuzzFarm, path: str) -> None:
    update: Any = text_update(4242, "x" * 1_100_000, update_id=99)
    body = encode(update)
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET, **sign(body, WA_SECRET),
               **signed_headers(body, SIGNING_SECRET)}
    before = fuzz_farm.stored()
    status, _ = await fuzz_farm.request("POST", path, body, headers)
    assert status == 413
    assert fuzz_farm.stored() == before
    assert await fuzz_farm.healthy()


@pytest.mark.parametrize("body", DEEPLY_NESTED, ids=["objects", "unterminated-arrays"])
@pytest.mark.parametrize("path", [TELEGRAM, WHATSAPP])
async def test_deeply_nested_json_is_refused_with_400_not_500(fuzz_farm: FuzzFarm, path: str, body: bytes) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET, **sign(body, WA_SECRET)}
    before = fuzz_farm.stored()
    status, _ = await fuzz_farm.request("POST", path, body, headers)
    assert status == 400
    assert fuzz_farm.stored() == before


@pytest.mark.parametrize("signature", ["valid", "forged"])
async def test_slack_body_that_is_not_utf8_is_refused_not_500(fuzz_farm: FuzzFarm, signature: str) -> None:
    before = fuzz_farm.stored()
    status, _ = await fuzz_farm.request("POST", SLACK, NOT_UTF8, slack_headers(NOT_UTF8, "now", signature))
    assert 400 <= status < 500
    assert fuzz_farm.stored() == before


def _lone_surrogate_bodies() -> list[bytes]:
    escaped = text_update(4242, "x", update_id=7)
    escaped["message"]["text"] = "\ud800"
    raw = text_update(4242, "x", update_id=8)
    raw["message"]["chat"]["id"] = "\ud800"
    whatsapp = text_webhook("491701234567", "\udfff", phone_number_id=WA_PHONE)
    return [json.dumps(escaped).encode(), encode(raw), json.dumps(whatsapp).encode()]


@pytest.mark.parametrize("body", _lone_surrogate_bodies(), ids=["telegram-escaped", "telegram-raw", "whatsapp"])
async def test_text_with_a_lone_surrogate_is_refused_not_500(fuzz_farm: FuzzFarm, body: bytes) -> None:
    path = WHATSAPP if b"whatsapp_business_account" in body else TELEGRAM
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET, **sign(body, WA_SECRET)}
    before = fuzz_farm.stored()
    status, _ = await fuzz_farm.request("POST", path, body, headers)
    assert 400 <= status < 500
    assert fuzz_farm.stored() == before


def _wrong_types() -> list[dict[str, Any]]:
    name = text_update(4242, "hi", update_id=21)
    name["message"]["from"]["first_name"] = [None]
    text = text_update(4242, "hi", update_id=22)
    text["message"]["text"] = {"not": "text"}
    data = callback_update(4242, "/affirm", update_id=23)
    data["callback_query"]["data"] = ["/affirm"]
    return [name, text, data]


@pytest.mark.parametrize("update", _wrong_types(), ids=["name-list", "text-object", "callback-data-list"])
async def test_telegram_fields_of_the_wrong_type_are_not_a_500(fuzz_farm: FuzzFarm, update: dict[str, Any]) -> None:
    status = await check(fuzz_farm, "POST", TELEGRAM, encode(update), {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})
    assert status in (200, 400)


async def test_farm_still_answers_customers_after_the_fuzzing(fuzz_farm: FuzzFarm) -> None:
    body = encode(text_update(4343, "still there?", update_id=12345))
    status, _ = await fuzz_farm.request("POST", TELEGRAM, body, {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})
    assert status == 200
    await fuzz_farm.farm.farm.settle()
    assert any("echo: still there?" in str(c.params.get("text")) for c in fuzz_farm.fakes.telegram.requests)
