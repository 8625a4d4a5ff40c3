"""One person across channels: linking identities of a bot's contacts, and unlinking them.

Two ways link contacts of the same bot (never across bots):
- a verified phone: WhatsApp's ``wa_id``, or a Telegram contact the user shared as their
  own (the adapter sets ``Inbound.shared_phone`` only then). Contacts with the same phone
  are merged; the older contact is kept.
- a one-time link code: the customer asks for it in one channel and types it in the other.
  The code is 6 digits, lives ``link_code_ttl_seconds``, is single use, and each contact
  may fail ``link_code_attempts`` times before redeeming is locked for an hour. The
  contact that asked for the code is kept.

Merging moves the dropped contact's identities, transcript (merged in time order, each
event keeps its channel), inbox and outbox to the kept contact (`Store.merge_contacts`).
`unlink` moves one channel identity to a new contact; the transcript written so far
stays with the old contact (it cannot be split reliably: bot replies and agent notes
belong to both channels).
Every change writes an audit entry; no phone number or code is logged or audited.
"""

from __future__ import annotations

import enum
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol

import structlog

from core.errors import NotFound
from core.model import Contact, Identity, Inbound, new_id, utcnow
from core.store.base import AuditEntry, Store

log = structlog.get_logger(__name__)

LOCK_SECONDS = 3600.0
CODE_PATTERN = re.compile(r"^\d{6}$")


def normalise_phone(raw: str | None) -> str | None:
    """E.164 digits without '+' (``+49 151 234`` → ``49151234``); None if not international.

    A leading ``00`` counts as the international prefix; a number with a national
    trunk prefix (``0151...``) cannot be placed in a country and returns None.
    """
    if not raw:
        return None
    text = raw.strip()
    digits = re.sub(r"\D", "", text)
    if not text.startswith("+"):
        if digits.startswith("00"):
            digits = digits[2:]
        elif digits.startswith("0"):
            return None
    if not 8 <= len(digits) <= 15 or digits.startswith("0"):
        return None
    return digits


class LinkStatus(enum.StrEnum):
    LINKED = "linked"
    INVALID = "invalid"  # unknown, expired or already used
    LOCKED = "locked"  # too many failed attempts
    OWN_CODE = "own_code"  # typed in the same contact that asked for it


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """The outcome of checking a code; on success the code is used up and ``keep_id`` is its issuer."""

    status: LinkStatus
    keep_id: str | None = None


LINK_CODE_TTL_SECONDS = 600
LINK_CODE_ATTEMPTS = 5


class LinkCodeRules(Protocol):
    """A bot's link-code settings (``bots.<name>.privacy`` in farm.yml: `core.privacy.config.PrivacyConfig`)."""

    @property
    def link_code_ttl_seconds(self) -> int: ...

    @property
    def link_code_attempts(self) -> int: ...


@dataclass(frozen=True, slots=True)
class DefaultLinkCodeRules:
    link_code_ttl_seconds: int = LINK_CODE_TTL_SECONDS
    link_code_attempts: int = LINK_CODE_ATTEMPTS


class IdentityService:
    """Resolves and links contacts of each bot; ``privacy`` holds every bot's link-code rules
    (its `PrivacyConfig`)."""

    def __init__(self, store: Store, privacy: Mapping[str, LinkCodeRules]) -> None:
        self.store = store
        self.privacy = privacy

    def _config(self, bot: str) -> LinkCodeRules:
        return self.privacy.get(bot) or DefaultLinkCodeRules()

    # -- resolving -----------------------------------------------------------------------
    def verified_phone(self, inbound: Inbound) -> str | None:
        """The normalised number ``inbound`` verifies as its sender's (None if none or unusable)."""
        phone = normalise_phone(inbound.shared_phone)
        if inbound.shared_phone and phone is None:
            log.info("identity.phone_unusable", bot=inbound.bot, channel=inbound.channel)
        return phone

    async def resolve(self, inbound: Inbound) -> Contact:
        """The contact of an inbound message; links it by a verified shared phone; marks the channel last used."""
        identity = Identity(inbound.channel, inbound.channel_user_id, inbound.chat_id)
        contact = await self.store.resolve_contact(inbound.bot, identity, display_name=inbound.display_name)
        phone = normalise_phone(inbound.shared_phone)
        if phone is None:
            return contact
        if contact.phone == phone:
            # Linking by this number happened when it was first verified (by whichever
            # contact got it second), so a WhatsApp message costs no phone look-up.
            return contact
        if contact.phone is not None:
            # A second number for the same identity: keep the first verified one, link nothing.
            log.info("identity.phone_differs", bot=inbound.bot, contact=contact.id, channel=inbound.channel)
            return contact
        contact = replace(contact, phone=phone)
        await self.store.save_contact(contact)
        await self._audit(contact.bot, "system", "phone_verified", contact.id, channel=inbound.channel)
        others = [c for c in await self.store.find_contacts(inbound.bot, phone=phone) if c.id != contact.id]
        if others and await self._phone_links_blocked(contact.id):
            others = []
        for other in others:
            if other.bot != contact.bot or other.deleted or await self._phone_links_blocked(other.id):
                continue
            keep, drop = (other, contact) if other.created_at <= contact.created_at else (contact, other)
            contact = await self.store.merge_contacts(keep.id, drop.id)
            await self._audit(contact.bot, "system", "link", keep.id, via="phone", dropped=drop.id)
            log.info("identity.linked", bot=contact.bot, kept=keep.id, dropped=drop.id, via="phone")
        if contact.last_channel != inbound.channel:
            contact = replace(contact, last_channel=inbound.channel)
            await self.store.save_contact(contact)
        return contact

    # -- link codes ----------------------------------------------------------------------
    @staticmethod
    def _code_key(bot: str, code: str) -> str:
        return f"link:code:{bot}:{code}"

    @staticmethod
    def _active_key(contact_id: str) -> str:
        return f"link:active:{contact_id}"

    @staticmethod
    def _fail_key(contact_id: str) -> str:
        return f"link:fail:{contact_id}"

    @staticmethod
    def _no_phone_link_key(contact_id: str) -> str:
        return f"link:no-phone-link:{contact_id}"

    async def _phone_links_blocked(self, contact_id: str) -> bool:
        return bool(await self.store.kv_get(self._no_phone_link_key(contact_id)))

    async def issue_link_code(self, contact: Contact) -> str:
        """A fresh 6-digit code for ``contact``; any earlier code of the contact stops working."""
        ttl = self._config(contact.bot).link_code_ttl_seconds
        previous = await self.store.kv_get(self._active_key(contact.id))
        if isinstance(previous, str):
            await self.store.kv_delete(self._code_key(contact.bot, previous))
        for _ in range(20):
            code = f"{secrets.randbelow(1_000_000):06d}"
            if await self.store.kv_get(self._code_key(contact.bot, code)) is None:
                break
        else:  # pragma: no cover - a million codes in use at once
            raise RuntimeError("no free link code")
        record = {"contact_id": contact.id, "nonce": new_id("lc"), "issued_at": utcnow().isoformat()}
        await self.store.kv_set(self._code_key(contact.bot, code), record, ttl_seconds=ttl)
        await self.store.kv_set(self._active_key(contact.id), code, ttl_seconds=ttl)
        await self._audit(contact.bot, "customer", "link_code_issued", contact.id, channel=contact.last_channel)
        log.info("identity.link_code_issued", bot=contact.bot, contact=contact.id)
        return code

    async def link_locked(self, contact: Contact) -> bool:
        """True while ``contact`` has used up its failed attempts."""
        failures = await self.store.kv_get(self._fail_key(contact.id))
        return isinstance(failures, int) and failures >= self._config(contact.bot).link_code_attempts

    async def claim_link_code(self, contact: Contact, code: str) -> LinkClaim:
        """Check ``code`` for ``contact`` and use it up; counts failures. Does not merge (see `link`)."""
        if await self.link_locked(contact):
            log.info("identity.link_locked", bot=contact.bot, contact=contact.id)
            return LinkClaim(LinkStatus.LOCKED)
        code = code.strip()
        record = await self.store.kv_get(self._code_key(contact.bot, code)) if CODE_PATTERN.match(code) else None
        if isinstance(record, dict) and record.get("contact_id") == contact.id:
            return LinkClaim(LinkStatus.OWN_CODE)
        issuer = await self.store.get_contact(record["contact_id"]) if isinstance(record, dict) else None
        claimed = False
        if issuer is not None and not issuer.deleted and issuer.bot == contact.bot:
            # `remember` is atomic in every store: of two concurrent redemptions only one wins.
            claimed = await self.store.remember(
                f"link:used:{record['nonce']}",  # type: ignore[index]
                self._config(contact.bot).link_code_ttl_seconds + 60,
            )
        if not claimed or issuer is None:
            failures = await self.store.kv_get(self._fail_key(contact.id))
            count = (failures if isinstance(failures, int) else 0) + 1
            await self.store.kv_set(self._fail_key(contact.id), count, ttl_seconds=LOCK_SECONDS)
            await self._audit(contact.bot, "customer", "link_code_failed", contact.id, attempt=count)
            log.info("identity.link_code_failed", bot=contact.bot, contact=contact.id, attempt=count)
            return LinkClaim(LinkStatus.INVALID)
        await self.store.kv_delete(self._code_key(contact.bot, code))
        await self.store.kv_delete(self._active_key(issuer.id))
        await self.store.kv_delete(self._fail_key(contact.id))
        return LinkClaim(LinkStatus.LINKED, keep_id=issuer.id)

    async def link(self, keep_id: str, drop_id: str, *, actor: str = "customer", via: str = "code") -> Contact:
        """Merge ``drop_id`` into ``keep_id``; the dropped contact's last channel stays the one to answer on."""
        drop = await self.store.get_contact(drop_id)
        if drop is None:
            raise NotFound(f"contact {drop_id}")
        merged = await self.store.merge_contacts(keep_id, drop_id)
        for contact_id in (keep_id, drop_id):
            await self.store.kv_delete(self._no_phone_link_key(contact_id))
        if drop.last_channel and merged.last_channel != drop.last_channel:
            merged = replace(merged, last_channel=drop.last_channel)
            await self.store.save_contact(merged)
        await self._audit(merged.bot, actor, "link", keep_id, via=via, dropped=drop_id)
        log.info("identity.linked", bot=merged.bot, kept=keep_id, dropped=drop_id, via=via)
        return merged

    async def redeem_link_code(self, contact: Contact, code: str) -> Contact | None:
        """Link ``contact`` with the contact that asked for ``code``; the merged contact, or None."""
        claim = await self.claim_link_code(contact, code)
        if claim.status is not LinkStatus.LINKED or claim.keep_id is None:
            return None
        return await self.link(claim.keep_id, contact.id)

    # -- unlinking -----------------------------------------------------------------------
    async def unlink(self, contact_id: str, channel: str, *, actor: str = "customer") -> Contact:
        """Move ``channel``'s identity of the contact to a new contact and return the new one.

        The transcript so far stays with the old contact; the new contact starts empty.
        Neither contact is linked by phone again (otherwise the next WhatsApp message
        would undo the unlink); a link code still links them on purpose.
        """
        contact = await self.store.get_contact(contact_id)
        if contact is None or contact.deleted:
            raise NotFound(f"contact {contact_id}")
        moving = [i for i in contact.identities if i.channel == channel]
        if not moving:
            raise NotFound(f"contact {contact_id} has no {channel} identity")
        remaining = tuple(i for i in contact.identities if i.channel != channel)
        last = contact.last_channel if contact.last_channel != channel else (remaining[0].channel if remaining else None)
        await self.store.save_contact(replace(contact, identities=remaining, last_channel=last))
        fresh = Contact(
            id=new_id("ct"),
            bot=contact.bot,
            identities=tuple(moving),
            display_name=contact.display_name,
            last_channel=channel,
        )
        await self.store.save_contact(fresh)
        for blocked in (contact.id, fresh.id):
            await self.store.kv_set(self._no_phone_link_key(blocked), True)
        await self._audit(contact.bot, actor, "unlink", contact.id, channel=channel, new_contact=fresh.id)
        log.info("identity.unlinked", bot=contact.bot, contact=contact.id, new_contact=fresh.id, channel=channel)
        return fresh

    async def _audit(self, bot: str, actor: str, action: str, target: str, **detail: object) -> None:
        await self.store.audit(AuditEntry(actor=actor, action=action, target=target, detail=dict(detail), bot=bot))
