"""The Slack desk's slash command (``/switchboard`` by default): queue, claim by number, transfer.

    /switchboard queue                      the handed-off conversations, numbered (waiting first)
    /switchboard claim 2                    claim number 2 of that list (like the card's Claim button)
    /switchboard transfer @ben [note]       hand your one conversation to Ben, with an internal note
    /switchboard transfer 3 queue [note]    put number 3 back in the queue
    /switchboard help

Slack wants an answer within 3 s: the listener acks at once and answers afterwards through the
command's ``response_url`` (Bolt's ``respond``), visible only to the agent who typed it. Slack
does not tell an app in which thread a command was typed, so a transfer names its conversation by
number (or its ``conv_...`` id from the card); without one, the agent's only conversation is meant.
Numbers follow the list as it is when the command runs: each answer names the customer acted on.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import structlog

from channels import slack_card as card
from core.desk import DeskActions, customer_name
from core.errors import SwitchboardError
from core.handoff.service import QueueEntry
from core.model import ConversationStatus, utcnow

log = structlog.get_logger(__name__)

_MENTION = re.compile(r"^<@([A-Z0-9]+)(?:\|[^>]*)?>$")
_MAX_LISTED = 25


class QueueSource(Protocol):
    async def __call__(self, bots: Collection[str] | None = None) -> Sequence[QueueEntry]: ...


def usage(command: str) -> str:
    return (f"*{command}* — the agents' desk from anywhere in Slack:\n"
            f"• `{command} queue` — handed-off conversations, numbered (waiting first)\n"
            f"• `{command} claim N` — claim number N of that list\n"
            f"• `{command} transfer [N] @agent [note]` — hand a conversation to a colleague\n"
            f"• `{command} transfer [N] queue [note]` — put it back in the queue\n"
            "Without N, a transfer means your one claimed conversation.")


def _waited(since: datetime | None, now: datetime) -> str:
    if since is None:
        return ""
    minutes = max(0, int((now - since).total_seconds() // 60))
    return f"waiting {minutes} min" if minutes < 120 else f"waiting {minutes // 60} h"


class SlashCommands:
    """Parses a command's text and runs it through `core.desk.DeskActions`; returns the answer text."""

    def __init__(self, command: str, actions: DeskActions, queue: QueueSource | None, *,
                 is_agent: Callable[[str], Awaitable[bool]], display_name: Callable[[str], Awaitable[str]],
                 agent_ids: Callable[[], Awaitable[Collection[str]]]) -> None:
        self.command = command
        self.actions = actions
        self.queue = queue
        self.is_agent = is_agent
        self.display_name = display_name
        self.agent_ids = agent_ids

    async def handle(self, ack: Callable[..., Awaitable[Any]], command: Mapping[str, Any],
                     respond: Callable[..., Awaitable[Any]]) -> None:
        """Bolt listener: ack first (Slack's 3 s), then answer the agent alone."""
        await ack()
        user = str(command.get("user_id") or "")
        text = str(command.get("text") or "")
        try:
            answer = await self.run(user, text)
        except SwitchboardError as exc:
            answer = f"That did not work: {exc}"
        except Exception:  # the agent must hear back; the details go to the log
            log.exception("slack_desk.command.crashed", user=user)
            answer = "Sorry, that failed on our side; please try again or use the card's buttons."
        try:
            await respond(text=answer, response_type="ephemeral")
        except Exception as exc:  # noqa: BLE001 - response_url expired or Slack unreachable
            log.warning("slack_desk.command.respond_failed", user=user, error=str(exc))

    async def run(self, user: str, text: str) -> str:
        if not user or not await self.is_agent(user):
            log.info("slack_desk.command.refused", user=user)
            return "Sorry, only agents of this desk can do that."
        words = text.split()
        verb = words[0].lower() if words else "help"
        if verb in ("queue", "list", "q"):
            return await self._list()
        if verb == "claim":
            return await self._claim(user, words[1:])
        if verb == "transfer":
            return await self._transfer(user, text.split(None, 1)[1] if len(words) > 1 else "")
        if verb == "help":
            return usage(self.command)
        return f"I do not know “{card.escape(words[0])}”.\n" + usage(self.command)

    async def _entries(self) -> list[QueueEntry]:
        if self.queue is None:
            return []
        entries = list(await self.queue())
        # waiting first, oldest first (the service's order), then those with an agent
        return [e for e in entries if e.conversation.status is ConversationStatus.WAITING] + \
               [e for e in entries if e.conversation.status is ConversationStatus.AGENT]

    async def _list(self) -> str:
        entries = await self._entries()
        if not entries:
            return "No one is waiting and no conversation is with an agent. :tada:"
        now = utcnow()
        lines: list[str] = []
        waiting = sum(1 for e in entries if e.conversation.status is ConversationStatus.WAITING)
        lines.append(f"*{waiting} waiting*" if waiting else "*No one is waiting.*")
        for number, entry in enumerate(entries[:_MAX_LISTED], start=1):
            if number == waiting + 1:
                lines.append("*With agents*")
            lines.append(f"{number}. {self._describe(entry, now)}")
        if len(entries) > _MAX_LISTED:
            lines.append(f"…and {len(entries) - _MAX_LISTED} more on the web desk.")
        lines.append(f"_Claim one with_ `{self.command} claim N`.")
        return "\n".join(lines)

    def _describe(self, entry: QueueEntry, now: datetime) -> str:
        conversation = entry.conversation
        identity = entry.contact.reply_identity() if entry.contact else None
        parts = [f"*{card.escape(customer_name(entry.contact, conversation.language))}*"]
        if identity is not None:
            parts[0] += f" ({card.channel_label(identity.channel)})"
        if conversation.status is ConversationStatus.AGENT:
            parts.append(f"with {card.agent_ref(conversation.assigned_agent)}")
        else:
            parts.append(_waited(entry.since, now))
        if entry.reason:
            parts.append(card.escape(entry.reason[:80]))
        if entry.last_text:
            parts.append(f"“{card.escape(entry.last_text[:80])}”")
        return " — ".join(p for p in parts if p)

    def _pick(self, reference: str, entries: list[QueueEntry]) -> QueueEntry | str:
        """The entry a number or ``conv_...`` id names, or the error to show."""
        if reference.startswith("conv_"):
            found = next((e for e in entries if e.conversation.id == reference), None)
            return found or f"Conversation `{card.escape(reference)}` is not handed off (any more)."
        if not reference.isdigit() or int(reference) < 1:
            return f"“{card.escape(reference)}” is not a number from `{self.command} queue`."
        number = int(reference)
        if number > len(entries):
            count = len(entries)
            listed = "nothing is listed" if not count else f"the list has {count} conversation{'s' * (count != 1)}"
            return f"There is no number {number}: {listed}. See `{self.command} queue`."
        return entries[number - 1]

    async def _claim(self, user: str, args: Sequence[str]) -> str:
        if len(args) != 1:
            return f"Which one? Use `{self.command} claim N` with a number from `{self.command} queue`."
        entries = await self._entries()
        picked = self._pick(args[0], entries)
        if isinstance(picked, str):
            return picked
        conversation = picked.conversation
        name = card.escape(customer_name(picked.contact, conversation.language))
        agent_id = card.AGENT_PREFIX + user
        if conversation.status is ConversationStatus.AGENT:
            who = "you" if conversation.assigned_agent == agent_id else card.agent_ref(conversation.assigned_agent)
            return f"{name} is already with {who}."
        await self.actions.claim(conversation.id, agent_id, await self.display_name(user))
        log.info("slack_desk.command.claim", conversation=conversation.id, agent=agent_id)
        return f"You claimed *{name}*. Answer in the card's thread; start with `!` for an internal note."

    async def _transfer(self, user: str, rest: str) -> str:
        words = rest.split()
        agent_id = card.AGENT_PREFIX + user
        entries = await self._entries()
        reference = None
        if words and (words[0].isdigit() or words[0].startswith("conv_")):
            reference, words = words[0], words[1:]
        if not words:
            return f"To whom? Use `{self.command} transfer [N] @agent [note]` or `… transfer [N] queue [note]`."
        target_word, note = words[0], " ".join(words[1:])
        if reference is None:
            mine = [e for e in entries if e.conversation.assigned_agent == agent_id]
            if len(mine) != 1:
                if not mine:
                    return (f"You have no claimed conversation; name one by its number from "
                            f"`{self.command} queue`: `{self.command} transfer N {card.escape(target_word)}`.")
                numbers = ", ".join(str(entries.index(e) + 1) for e in mine)
                return f"You have {len(mine)} conversations ({numbers}); say which: `{self.command} transfer N …`."
            picked: QueueEntry | str = mine[0]
        else:
            picked = self._pick(reference, entries)
        if isinstance(picked, str):
            return picked
        conversation = picked.conversation
        name = card.escape(customer_name(picked.contact, conversation.language))
        my_name = await self.display_name(user)
        if target_word.lower() == "queue":
            await self.actions.transfer(conversation.id, agent_id, my_name, to_agent=None, note=note)
            log.info("slack_desk.command.transfer", conversation=conversation.id, agent=agent_id, to="queue")
            return f"*{name}* is back in the queue." + (" Your note is on the transcript." if note else "")
        target = await self._agent_of(target_word)
        if target is None:
            return (f"“{card.escape(target_word)}” is not an agent of this desk. Mention them (`@name`) "
                    "or write `queue`.")
        await self.actions.transfer(conversation.id, agent_id, my_name, to_agent=card.AGENT_PREFIX + target,
                                    to_name=await self.display_name(target), note=note)
        log.info("slack_desk.command.transfer", conversation=conversation.id, agent=agent_id,
                 to=card.AGENT_PREFIX + target)
        return f"*{name}* is now with <@{target}>." + (" Your note is on the transcript." if note else "")

    async def _agent_of(self, word: str) -> str | None:
        """A Slack user id from ``<@U123|name>`` (Slack's escaped mention) or ``@name`` (an agent's
        display name), if that user is an agent."""
        found = _MENTION.match(word)
        if found:
            user = found.group(1)
            return user if await self.is_agent(user) else None
        wanted = word.removeprefix("@").lower()
        if not wanted:
            return None
        for user in await self.agent_ids():
            if user.lower() == wanted or (await self.display_name(user)).lower() == wanted:
                return user
        return None
