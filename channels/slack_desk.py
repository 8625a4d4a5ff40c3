"""The Slack agents' desk: a handoff card per conversation, agents answer in its thread.

Built on slack-bolt's `AsyncApp` and slack-sdk's `AsyncWebClient` (``api_base`` from
config, 429s retried after ``Retry-After``). Listeners are thin: they filter Slack noise
(other channels, bots, edits, the app itself, non-agents, retries of events already
handled) and hand every decision to `core.desk.DeskActions`. Agent ids given to the core
are namespaced: ``slack:U0AGENTANNA``. Masking is the core's job; texts arrive masked.

The slash command (``/switchboard`` by default: queue, claim N, transfer) is
`channels.slack_commands`; files in threads both ways are `channels.slack_files`.

HTTP mode: `routes` gives ``POST /slack/events`` (events, interactivity and commands, signature
checked by Bolt: forged or older than 5 minutes -> 401). Socket Mode: set ``app_token``;
`start` connects, `stop` disconnects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import structlog
from aiohttp import web
from aiolimiter import AsyncLimiter
from pydantic import ValidationError
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from channels import slack_assist as assist
from channels import slack_card as card
from channels.slack_commands import QueueSource, SlashCommands
from channels.slack_desk_config import SlackDeskConfig
from channels.slack_erase import SlackEraser
from channels.slack_errors import map_slack_error
from channels.slack_files import SlackFiles
from core.desk import DeadLetterNotice, DeskActions, HandoffSummary
from core.errors import (
    BadRequest,
    ChannelError,
    ConfigError,
    RateLimited,
    SwitchboardError,
    TransientError,
)
from core.files import FileStore
from core.model import Attachment, Conversation, Event
from core.ports import Route
from core.privacy.erasure import ErasureCount

__all__ = ["IsDuplicate", "ResolveThread", "SlackDesk"]

POSTS_PER_SECOND = 1.0  # chat.postMessage, per channel (Slack's "special" tier)
POST_BURST = 5

log = structlog.get_logger(__name__)

ResolveThread = Callable[[str], Awaitable[str | None]]
"""Desk thread id (the card's ``ts``) -> conversation id, or None if not ours."""
IsDuplicate = Callable[[str], Awaitable[bool]]
"""Records a key and says whether it was seen before (atomically, across processes)."""

# Agents may attach files or "also send to channel"; everything else is noise.
_AGENT_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})
_CANNOT_POST = ("channel_not_found", "not_in_channel", "is_archived", "channel_is_archived")
PROBE_AFTER = 30.0  # seconds between reachability checks while Slack is failing
PROBE_TIMEOUT = 3.0  # a check runs inside a customer's turn: never longer than this
_NOT_ALLOWED = "Sorry, only agents of this desk can do that."
_ACTION_FAILED = "That did not work: {error}"
REVIEW_COMMAND = "review"  # `!review` in a thread: the customer's latest message goes to the review queue
_REVIEW_DONE = "Sent to the review queue: “{text}”"


class _TTLCache:
    """A tiny time-limited cache (users.info names, user-group members)."""

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self._ttl, self._clock = ttl, clock
        self._data: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> Any | None:
        hit = self._data.get(key)
        if hit is None or hit[0] < self._clock():
            return None
        return hit[1]

    def put(self, key: str, value: Any) -> None:
        self._data[key] = (self._clock() + self._ttl, value)


class SlackDesk:
    """`core.desk.Desk` on Slack. Build it with the config and the core's callbacks."""

    name = "slack"
    Config = SlackDeskConfig  # the ``desk.slack`` block; `switchboard check` validates it with this

    def __init__(
        self,
        config: SlackDeskConfig,
        actions: DeskActions,
        resolve_thread: ResolveThread,
        is_duplicate: IsDuplicate,
        *,
        rate_limit_retries: int = 3,
        cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        files: FileStore | None = None,
        queue: QueueSource | None = None,
    ) -> None:
        if not config.bot_token:
            raise ConfigError("a bot token (xoxb-...) is required", key="desk.slack.bot_token")
        if not config.channel:
            raise ConfigError("the agents' channel id is required", key="desk.slack.channel")
        if not config.signing_secret and not config.app_token:
            raise ConfigError("set signing_secret (HTTP) or app_token (Socket Mode)", key="desk.slack")
        self.config = config
        self._actions = actions
        self._resolve_thread = resolve_thread
        self._is_duplicate = is_duplicate
        self.client = AsyncWebClient(
            token=config.bot_token,
            base_url=config.api_base,
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(),
                AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
            ],
        )
        self.app = AsyncApp(
            client=self.client,
            signing_secret=config.signing_secret,
            process_before_response=False,
            raise_error_for_unhandled_request=False,
            ignoring_self_events_enabled=True,
            logger=logging.getLogger("slack_bolt.switchboard"),
        )
        # HTTP mode only; Socket Mode needs no signing secret.
        self._verifier = SignatureVerifier(config.signing_secret) if config.signing_secret else None
        self._post_pace = AsyncLimiter(POST_BURST, POST_BURST / POSTS_PER_SECOND)
        self._names = _TTLCache(cache_seconds, clock)
        self._groups = _TTLCache(cache_seconds, clock)
        self._cards: dict[str, list[dict[str, Any]]] = {}  # thread ts -> card's fixed blocks
        self._customers: dict[str, str] = {}  # thread ts -> customer name
        self._socket: AsyncSocketModeHandler | None = None
        self._session: aiohttp.ClientSession | None = None
        self.bot_user_id: str | None = None
        self._clock = clock
        self._health: tuple[bool, float] = (True, clock())  # the last Web API call: (worked, when)
        self.files = SlackFiles(files, config.bot_token, self._call, lambda: self._session) if files else None
        self.commands = SlashCommands(config.command, actions, queue, is_agent=self._is_agent,
                                      display_name=self._display_name, agent_ids=self._agent_ids)
        self.eraser = SlackEraser(config)
        # Set by the core's review loop: `<note prefix>review` in a thread sends the customer's latest
        # message to the review queue; called with (conversation id, agent id), returns its (masked) text.
        self.on_review: Callable[[str, str], Awaitable[str]] | None = None
        self._register()

    @classmethod
    def from_config(cls, config: SlackDeskConfig | Mapping[str, Any], actions: DeskActions,
                    resolve_thread: ResolveThread, is_duplicate: IsDuplicate, *,
                    files: FileStore | None = None, queue: QueueSource | None = None) -> SlackDesk:
        """Build from the ``desk.slack`` block of farm.yml (validated here) or a ready `SlackDeskConfig`."""
        if not isinstance(config, SlackDeskConfig):
            try:
                config = SlackDeskConfig.model_validate(dict(config))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in ("desk", "slack", *first["loc"]))
                raise ConfigError(first["msg"], key=where) from None
        return cls(config, actions, resolve_thread, is_duplicate, files=files, queue=queue)

    @staticmethod
    def eraser_from_config(config: SlackDeskConfig | Mapping[str, Any]) -> SlackEraser:
        """What ``switchboard forget`` uses to erase Slack copies without running a desk (``config``:
        the ``desk.slack`` block of farm.yml, or a ready `SlackDeskConfig`)."""
        return SlackEraser(config if isinstance(config, SlackDeskConfig) else SlackDeskConfig.model_validate(dict(config)))

    async def erase_thread(self, thread: str) -> ErasureCount:
        """`core.privacy.erasure.ErasureTarget`: delete or blank the card and its thread."""
        self._cards.pop(thread, None)
        self._customers.pop(thread, None)
        return await self.eraser.erase_thread(thread)

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Open the HTTP session, check the token (fail fast), connect Socket Mode if configured."""
        self._session = aiohttp.ClientSession()
        self.client.session = self._session
        auth = await self._call("auth_test")
        self.bot_user_id = auth.get("user_id")
        if self.config.app_token:
            self._socket = AsyncSocketModeHandler(self.app, self.config.app_token, web_client=self.client)
            await self._socket.connect_async()  # type: ignore[no-untyped-call]
        log.info("slack_desk.started", socket_mode=self._socket is not None, channel=self.config.channel)

    async def stop(self) -> None:
        """Disconnect and close; safe to call twice."""
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        if self._session is not None:
            await self._session.close()
            self._session = None
            self.client.session = None

    def routes(self) -> Sequence[Route]:
        """``POST /slack/events`` in HTTP mode; nothing when only Socket Mode is configured."""
        if not self.config.signing_secret:
            return ()
        return (Route("POST", "/slack/events", self.handle_http, name="slack-events"),)

    async def handle_http(self, request: web.Request) -> web.Response:
        """Events, interactivity and commands over HTTP; Bolt checks the signature and acks."""
        # Bolt parses the body before it checks the signature and fails with a 500 on odd
        # input; check both first: forged or stale requests get 401, malformed ones 400.
        try:
            body = (await request.read()).decode("utf-8")
        except UnicodeDecodeError:
            body = None
        if body is None or not self._signed(body, request.headers):
            log.warning("slack_desk.request.rejected", reason="signature")
            return web.json_response({"error": "invalid request"}, status=401)
        if not _well_formed(body, request.content_type):
            log.warning("slack_desk.request.malformed")
            return web.json_response({"error": "malformed body"}, status=400)
        bolt_request = await to_bolt_request(request)
        bolt_response = await self.app.async_dispatch(bolt_request)
        if bolt_response.status == 401:
            log.warning("slack_desk.request.rejected", reason="signature")
        return await to_aiohttp_response(bolt_response)

    def _signed(self, body: str, headers: Mapping[str, str]) -> bool:
        if self._verifier is None:
            return False
        try:
            return self._verifier.is_valid_request(body, dict(headers))
        except ValueError:  # a timestamp header that is not a number
            return False

    # -- Desk: core -> Slack ---------------------------------------------------------
    async def open_handoff(self, summary: HandoffSummary) -> str | None:
        """Post the card; its ``ts`` is the thread id the core stores on the conversation."""
        base = card.summary_blocks(summary)
        blocks = card.card_blocks(base, summary.conversation)
        result = await self._call("chat_postMessage", channel=self.config.channel,
                                  text=card.card_text(summary), blocks=blocks, unfurl_links=False)
        ts = str(result["ts"])
        self._cards[ts] = base
        self._customers[ts] = card.customer_name(summary)
        log.info("slack_desk.handoff.posted", conversation=summary.conversation.id, thread=ts,
                 sticky=summary.previous_agent is not None)
        help_ = await self._assistance(summary.conversation.id)
        if help_ is not None:
            await self._call("chat_postMessage", channel=self.config.channel, thread_ts=ts,
                             text=f"Assistant: {help_.summary}", unfurl_links=False,
                             blocks=assist.assistant_blocks(summary.conversation.id, help_))
        return ts

    async def customer_message(self, conversation: Conversation, event: Event) -> None:
        thread = conversation.desk_thread
        if not thread:
            log.warning("slack_desk.customer_message.no_thread", conversation=conversation.id)
            return
        name = self._customers.get(thread, "Customer")
        line = card.customer_line(name, event.channel, event)
        help_ = await self._assistance(conversation.id)
        extra = assist.suggestion_blocks(conversation.id, help_.suggestions) if help_ is not None else []
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": line[:2900]}}, *extra] if extra else None
        await self._call("chat_postMessage", channel=self.config.channel, thread_ts=thread,
                         text=line, unfurl_links=False, **({"blocks": blocks} if blocks else {}))
        if self.files is not None and event.data.get("attachments"):
            await self.files.outgoing(self.config.channel, thread, conversation.bot, event.channel,
                                      event.data["attachments"])

    async def _assistance(self, conversation_id: str) -> Any | None:
        """The core's assistant output (`core.handoff.assist.Assistance`), if it offers one; its
        failure never keeps a card or a customer message from the thread."""
        get = getattr(self._actions, "assistance", None)
        if not callable(get):
            return None
        try:
            return await get(conversation_id)
        except Exception:
            log.exception("slack_desk.assist_failed", conversation=conversation_id)
            return None

    async def status_changed(self, conversation: Conversation, detail: str | None = None) -> None:
        """Update the card (status, buttons) and say what happened in the thread."""
        thread = conversation.desk_thread
        if not thread:
            log.warning("slack_desk.status.no_thread", conversation=conversation.id)
            return
        base = self._cards.get(thread)
        if base is None:
            base = await self._fetch_card(thread)
        name = self._customers.get(thread, "Customer")
        await self._call("chat_update", channel=self.config.channel, ts=thread,
                         text=f"Handoff: {card.escape(name)} — {card.status_line(conversation, None)}",
                         blocks=card.card_blocks(base, conversation, detail))
        await self._call("chat_postMessage", channel=self.config.channel, thread_ts=thread,
                         text=card.status_line(conversation, detail))
        log.info("slack_desk.status.updated", conversation=conversation.id, status=str(conversation.status))

    async def dead_letter(self, notice: DeadLetterNotice) -> str:
        """A customer message failed for good: one line in the desk channel (not a thread).
        Returns its ``ts``: the core records it as a copy, erased by forget and retention."""
        told = "The customer was told." if notice.customer_told else "The customer was not told."
        text = (f":warning: A message to *{card.escape(notice.bot)}* ({card.channel_label(notice.channel)}) could "
                f"not be processed after {notice.attempts} attempts: `{card.escape(notice.error[:200])}`\n"
                f"> {card.escape(notice.text[:300])}\n{told} Replay or drop it on the web desk or with "
                f"`switchboard dead-letters replay {notice.id}` / `drop {notice.id}`.")
        result = await self._call("chat_postMessage", channel=self.config.channel, text=text, unfurl_links=False)
        log.info("slack_desk.dead_letter.posted", inbox=notice.id, conversation=notice.conversation_id)
        return str(result["ts"])

    async def _fetch_card(self, thread: str) -> list[dict[str, Any]]:
        """The card's blocks after a restart (or from another farm process)."""
        try:
            result = await self._call("conversations_replies", channel=self.config.channel, ts=thread,
                                      limit=1, inclusive=True)
        except BadRequest as exc:  # card deleted or unreadable: a status-only card still helps
            log.warning("slack_desk.card.unreadable", thread=thread, error=str(exc))
            return []
        messages = result.get("messages") or []
        blocks = list(messages[0].get("blocks") or []) if messages else []
        self._cards[thread] = blocks
        return blocks

    # -- Slack -> core (listeners) ---------------------------------------------------
    def _register(self) -> None:
        self.app.event("message")(self._on_message)
        self.app.event("app_mention")(self._on_ignored_event)
        for action_id in ("claim", "back_to_bot", "close", "back_to_queue"):
            self.app.action(action_id)(self._on_button)
        self.app.action("transfer")(self._on_transfer)
        self.app.action(re.compile(f"^{assist.USE_ACTION}[1-3]$"))(self._on_use_suggestion)
        self.app.view(assist.VIEW_CALLBACK)(self._on_send_suggestion)
        self.app.command(self.config.command)(self.commands.handle)

    async def _on_ignored_event(self) -> None:
        """Acked by Bolt; nothing to do."""

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any], request: AsyncBoltRequest) -> None:
        reason = self._noise(event)
        if reason:
            log.debug("slack_desk.event.ignored", reason=reason)
            return
        event_id = str(body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}")
        if await self._is_duplicate(f"slack:event:{event_id}"):
            retry = _first(request.headers.get("x-slack-retry-num"))
            log.info("slack_desk.event.duplicate", event_id=event_id, retry_num=retry)
            return
        user = str(event["user"])
        if not await self._is_agent(user):
            log.info("slack_desk.event.ignored", reason="not an agent", user=user)
            return
        conversation_id = await self._resolve_thread(str(event["thread_ts"]))
        if conversation_id is None:
            log.info("slack_desk.event.ignored", reason="unknown thread", thread=event["thread_ts"])
            return
        name = await self._display_name(user)
        text = card.to_plain(str(event.get("text") or "")).strip()
        agent_id = card.AGENT_PREFIX + user
        attachments: list[Attachment] = []
        if event.get("files"):
            attachments = await self._agent_files(user, str(event["thread_ts"]), event["files"])
            if not attachments and not text:
                return
        files: dict[str, Any] = {"attachments": attachments} if attachments else {}  # older DeskActions too
        try:
            if self.on_review is not None and text == f"{self.config.note_prefix}{REVIEW_COMMAND}":
                flagged = await self.on_review(conversation_id, agent_id)
                await self._ephemeral(user, _REVIEW_DONE.format(text=flagged), thread=str(event["thread_ts"]))
                log.info("slack_desk.review", conversation=conversation_id, agent=agent_id)
            elif text.startswith(self.config.note_prefix):
                await self._actions.internal_note(conversation_id, agent_id, name,
                                                  text[len(self.config.note_prefix):].strip(), **files)
                log.info("slack_desk.note", conversation=conversation_id, agent=agent_id)
            else:
                await self._actions.agent_reply(conversation_id, agent_id, name, text, **files)
                log.info("slack_desk.reply", conversation=conversation_id, agent=agent_id, files=len(attachments))
        except SwitchboardError as exc:
            log.warning("slack_desk.reply.failed", conversation=conversation_id, agent=agent_id, error=str(exc))
            await self._ephemeral(user, _ACTION_FAILED.format(error=exc), thread=str(event["thread_ts"]))

    async def _agent_files(self, user: str, thread: str, files: Any) -> list[Attachment]:
        """The files an agent shared in the thread, kept for sending; refusals told to the agent."""
        if self.files is None:
            await self._ephemeral(user, "Files cannot be sent from Slack on this desk; the text (if any) was "
                                        "sent without them.", thread=thread)
            return []
        kept, refused = await self.files.incoming(files if isinstance(files, list) else [])
        if refused:
            await self._ephemeral(user, "Not sent to the customer: " + " ".join(refused), thread=thread)
        return kept

    def _noise(self, event: Mapping[str, Any]) -> str | None:
        """Why a message event is not an agent's thread reply in our channel (None if it is)."""
        if event.get("channel") != self.config.channel:
            return "other channel"
        if event.get("bot_id") or event.get("subtype") == "bot_message":
            return "bot"
        if event.get("subtype") not in _AGENT_SUBTYPES:
            return f"subtype {event.get('subtype')}"
        if not event.get("user") or event.get("user") == self.bot_user_id:
            return "self"
        if not event.get("thread_ts") or event.get("thread_ts") == event.get("ts"):
            return "not in a thread"
        return None

    async def _on_button(self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any],
                         action: dict[str, Any]) -> None:
        await ack()
        user = str(body.get("user", {}).get("id", ""))
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        action_id = str(action.get("action_id"))
        conversation_id = str(action.get("value") or "")
        if channel != self.config.channel or not conversation_id:
            log.info("slack_desk.action.ignored", reason="other channel or no value", action=action_id)
            return
        key = f"slack:action:{user}:{action.get('action_ts')}:{action_id}"
        if await self._is_duplicate(key):
            log.info("slack_desk.action.duplicate", action=action_id)
            return
        if not await self._is_agent(user):
            log.info("slack_desk.action.refused", reason="not an agent", user=user, action=action_id)
            await self._ephemeral(user, _NOT_ALLOWED)
            return
        name = await self._display_name(user)
        agent_id = card.AGENT_PREFIX + user
        handler = {
            "claim": self._actions.claim,
            "back_to_bot": self._actions.back_to_bot,
            "close": self._actions.close,
            "back_to_queue": self._to_queue,
        }[action_id]
        try:
            await handler(conversation_id, agent_id, name)
        except SwitchboardError as exc:
            log.warning("slack_desk.action.failed", action=action_id, conversation=conversation_id, error=str(exc))
            await self._ephemeral(user, _ACTION_FAILED.format(error=exc))
            return
        log.info("slack_desk.action", action=action_id, conversation=conversation_id, agent=agent_id)

    async def _to_queue(self, conversation_id: str, agent_id: str, name: str) -> Conversation:
        return await self._actions.transfer(conversation_id, agent_id, name, to_agent=None)

    async def _on_transfer(self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any],
                           action: dict[str, Any]) -> None:
        """The card's "Transfer to…" user picker: the card's thread names the conversation."""
        await ack()
        user = str(body.get("user", {}).get("id", ""))
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        target = str(action.get("selected_user") or "")
        thread = str((body.get("container") or {}).get("message_ts") or (body.get("message") or {}).get("ts") or "")
        if channel != self.config.channel or not target or not thread:
            log.info("slack_desk.action.ignored", reason="other channel, no user or no card", action="transfer")
            return
        if await self._is_duplicate(f"slack:action:{user}:{action.get('action_ts')}:transfer"):
            return
        if not await self._is_agent(user):
            await self._ephemeral(user, _NOT_ALLOWED)
            return
        if not await self._is_agent(target):
            await self._ephemeral(user, _ACTION_FAILED.format(error=f"<@{target}> is not an agent of this desk"))
            return
        conversation_id = await self._resolve_thread(thread)
        if conversation_id is None:
            log.info("slack_desk.action.ignored", reason="unknown card", action="transfer")
            return
        agent_id = card.AGENT_PREFIX + user
        try:
            await self._actions.transfer(conversation_id, agent_id, await self._display_name(user),
                                         to_agent=card.AGENT_PREFIX + target, to_name=await self._display_name(target))
        except SwitchboardError as exc:
            log.warning("slack_desk.action.failed", action="transfer", conversation=conversation_id, error=str(exc))
            await self._ephemeral(user, _ACTION_FAILED.format(error=exc))
            return
        log.info("slack_desk.action", action="transfer", conversation=conversation_id, agent=agent_id,
                 to=card.AGENT_PREFIX + target)

    async def _on_use_suggestion(self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any],
                                 action: dict[str, Any]) -> None:
        """"Use N" under a suggestion: a modal with the text to edit (Slack cannot prefill the composer)."""
        await ack()
        user = str(body.get("user", {}).get("id", ""))
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        thread = str((body.get("message") or {}).get("thread_ts") or (body.get("container") or {}).get("thread_ts")
                     or "")
        view = assist.edit_modal(str(action.get("value") or ""), thread, self.config.note_prefix)
        if channel != self.config.channel or view is None or not body.get("trigger_id"):
            log.info("slack_desk.action.ignored", reason="other channel or not a suggestion", action="use_suggestion")
            return
        if not await self._is_agent(user):
            await self._ephemeral(user, _NOT_ALLOWED)
            return
        try:
            await self._call("views_open", trigger_id=str(body["trigger_id"]), view=view)
        except ChannelError as exc:  # e.g. the 3-second trigger expired
            await self._ephemeral(user, _ACTION_FAILED.format(error=exc), thread=thread or None)
            return
        log.info("slack_desk.suggestion.opened", agent=card.AGENT_PREFIX + user)

    async def _on_send_suggestion(self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any],
                                  view: dict[str, Any]) -> None:
        """The agent sent the (edited) suggestion from the modal: a reply like any thread reply."""
        user = str(body.get("user", {}).get("id", ""))
        found = assist.submitted(view)
        if found is None or not found[2]:
            await ack(response_action="errors", errors={assist.REPLY_BLOCK: "Write a reply (or press Cancel)."})
            return
        if not await self._is_agent(user):
            await ack(response_action="errors", errors={assist.REPLY_BLOCK: _NOT_ALLOWED})
            return
        await ack()
        conversation_id, thread, text = found
        agent_id = card.AGENT_PREFIX + user
        name = await self._display_name(user)
        try:
            await self._actions.agent_reply(conversation_id, agent_id, name, text)
        except SwitchboardError as exc:
            log.warning("slack_desk.reply.failed", conversation=conversation_id, agent=agent_id, error=str(exc))
            await self._ephemeral(user, _ACTION_FAILED.format(error=exc), thread=thread or None)
            return
        log.info("slack_desk.suggestion.sent", conversation=conversation_id, agent=agent_id)

    # -- agents ----------------------------------------------------------------------
    async def _is_agent(self, user: str) -> bool:
        if user in self.config.agents:
            return True
        return user in await self._group_members()

    async def _group_members(self) -> frozenset[str]:
        group = self.config.agent_group
        if not group:
            return frozenset()
        members = self._groups.get(group)
        if members is None:
            try:
                result = await self._call("usergroups_users_list", usergroup=group)
            except ChannelError as exc:
                log.warning("slack_desk.agent_group.failed", group=group, error=str(exc))
                return frozenset()
            members = frozenset(result.get("users") or ())
            self._groups.put(group, members)
        return frozenset(members)

    async def _agent_ids(self) -> list[str]:
        """Slack users who are agents: the configured ones and the agent group's members."""
        ids = list(self.config.agents)
        return ids + sorted(u for u in await self._group_members() if u not in ids)

    async def _display_name(self, user: str) -> str:
        cached = self._names.get(user)
        if cached is not None:
            return str(cached)
        try:
            result = await self._call("users_info", user=user)
        except ChannelError as exc:
            log.warning("slack_desk.users_info.failed", user=user, error=str(exc))
            return "Agent"
        info = result.get("user") or {}
        profile = info.get("profile") or {}
        name = str(profile.get("display_name") or profile.get("real_name") or info.get("real_name")
                   or info.get("name") or "Agent")
        self._names.put(user, name)
        return name

    async def _ephemeral(self, user: str, text: str, thread: str | None = None) -> None:
        try:
            kwargs: dict[str, Any] = {"channel": self.config.channel, "user": user, "text": text}
            if thread:
                kwargs["thread_ts"] = thread
            await self._call("chat_postEphemeral", **kwargs)
        except ChannelError as exc:
            log.warning("slack_desk.ephemeral.failed", error=str(exc))

    async def reachable(self, bot: str, *, presence: bool = False) -> bool:
        """Whether Slack answers: the last Web API call's result; after a failure, at most every
        `PROBE_AFTER` seconds an ``auth.test`` (bounded by `PROBE_TIMEOUT`) checks again."""
        worked, at = self._health
        if worked:
            return True
        if self._clock() - at < PROBE_AFTER:
            return False
        try:
            await asyncio.wait_for(self._call("auth_test"), PROBE_TIMEOUT)
        except (ChannelError, TimeoutError):
            self._health = (False, self._clock())
            return False
        return True

    async def _call(self, method: str, **kwargs: Any) -> Any:
        """Every Web API call goes through here: errors mapped to the core's types; the result
        is the desk's reachability signal (a rate limit still means Slack is there)."""
        if method == "chat_postMessage":
            # Slack allows about one message per second per channel (short bursts pass);
            # pace posts here rather than collecting 429s.
            await self._post_pace.acquire()
        try:
            result = await getattr(self.client, method)(**kwargs)
        except SlackApiError as exc:
            mapped = map_slack_error(exc)
            log.warning("slack_desk.api.error", method=method, error=str(mapped))
            self._health = (isinstance(mapped, RateLimited | BadRequest) and not _cannot_post(mapped),
                            self._clock())
            raise mapped from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("slack_desk.api.unreachable", method=method, error=type(exc).__name__)
            self._health = (False, self._clock())
            raise TransientError(f"slack: {type(exc).__name__}") from exc
        self._health = (True, self._clock())
        return result


def _cannot_post(error: ChannelError) -> bool:
    """A Slack error that keeps every card out of the agents' channel (not one bad request)."""
    return any(code in str(error) for code in _CANNOT_POST)


def _first(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return value[0] if value else None
    return value


def _well_formed(body: str, content_type: str) -> bool:
    """Events are a JSON object; interactivity a form whose ``payload`` is a JSON object;
    and the fields Bolt's middleware reads have Slack's types (else Bolt answers 500)."""
    try:
        if content_type == "application/json":
            data = json.loads(body)
        elif content_type == "application/x-www-form-urlencoded":
            form = parse_qs(body, keep_blank_values=True)
            payload = form.get("payload")
            if payload is None:
                return all(len(v) == 1 for v in form.values())  # a slash command
            data = json.loads(payload[0])
        else:
            return False
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return False
    return _shape_problem(data) is None


def _is_dicts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _shape_problem(body: Any) -> str | None:
    """Why a signed body is not of a shape Bolt can read (None if it is)."""
    if not isinstance(body, dict):
        return "body is not an object"
    for key in ("type", "team_id", "api_app_id", "event_id", "command", "user_id", "channel_id"):
        if key in body and not isinstance(body[key], str):
            return f"{key} is not a string"
    for key in ("event", "user", "team", "channel", "container", "message", "enterprise"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            return f"{key} is not an object"
    for key in ("authorizations", "actions"):
        if key in body and not _is_dicts(body[key]):
            return f"{key} is not a list of objects"
    if body.get("type") == "event_callback" and not isinstance(body.get("event"), dict):
        return "event_callback without an event"
    return None
