"""The store contract for `ReviewStore`: the review queue, its labels, and erasure with a contact
(run on every backend by ``test_store_contract.py``)."""

from __future__ import annotations

from datetime import timedelta

from core.store.base import Store
from core.store.ports.review import ReviewItem, ReviewStatus, review_port
from tests.store.contract_support import BOT, OTHER_BOT, T0, contact_and_conversation


def _item(conversation_id: str, seq: int, *, contact_id: str = "ct1", bot: str = BOT, text: str = "wo ist mein paket",
          reasons: tuple[str, ...] = ("fallback",), at_seconds: int = 0) -> ReviewItem:
    return ReviewItem(id=ReviewItem.key(conversation_id, seq), bot=bot, text=text, reasons=reasons,
                      created_at=T0 + timedelta(seconds=at_seconds), conversation_id=conversation_id,
                      contact_id=contact_id, seq=seq, language="de", predicted_intent="nlu_fallback",
                      confidence=0.2, detail={"channel": "webchat"})


class ReviewContract:
    """Behaviour every store must show for `ReviewStore`; tests need an async ``store`` fixture."""

    async def test_an_added_message_is_listed_open_newest_first(self, store: Store) -> None:
        review = review_port(store)
        await review.add_review(_item("c1", 1, at_seconds=1))
        await review.add_review(_item("c1", 3, text="kündigen", at_seconds=3))
        await review.add_review(_item("c9", 1, bot=OTHER_BOT, at_seconds=2))
        items = await review.review_items(bot=BOT)
        assert [i.id for i in items] == ["c1:3", "c1:1"]
        assert items[0].text == "kündigen" and items[0].status is ReviewStatus.OPEN
        assert items[1].created_at == T0 + timedelta(seconds=1)
        assert items[1].confidence == 0.2 and items[1].predicted_intent == "nlu_fallback"
        assert items[1].detail == {"channel": "webchat"}
        assert len(await review.review_items()) == 3

    async def test_adding_the_same_message_again_merges_the_reasons(self, store: Store) -> None:
        review = review_port(store)
        await review.add_review(_item("c1", 1, reasons=("fallback",)))
        merged = await review.add_review(_item("c1", 1, reasons=("handoff", "fallback")))
        assert merged.reasons == ("fallback", "handoff")
        assert [i.reasons for i in await review.review_items()] == [("fallback", "handoff")]

    async def test_a_label_is_kept_and_filters_by_status(self, store: Store) -> None:
        review = review_port(store)
        await review.add_review(_item("c1", 1))
        await review.add_review(_item("c1", 2))
        at = T0 + timedelta(minutes=5)
        labelled = await review.label_review("c1:1", status=ReviewStatus.LABELLED, label="track_order",
                                             holdout=True, by="web:lea", at=at)
        assert labelled is not None and labelled.label == "track_order" and labelled.holdout
        assert labelled.labelled_by == "web:lea" and labelled.labelled_at == at
        await review.label_review("c1:2", status=ReviewStatus.OUT_OF_SCOPE, label="ignored", holdout=False,
                                  by="web:lea", at=at)
        assert [i.id for i in await review.review_items(status=ReviewStatus.LABELLED)] == ["c1:1"]
        out = await review.get_review("c1:2")
        assert out is not None and out.status is ReviewStatus.OUT_OF_SCOPE and out.label is None
        again = await review.add_review(_item("c1", 1, reasons=("low_rating",)))
        assert again.label == "track_order" and again.reasons == ("fallback", "low_rating")
        reopened = await review.label_review("c1:1", status=ReviewStatus.OPEN, label=None, holdout=True,
                                             by="web:lea", at=at)
        assert reopened is not None and reopened.label is None and not reopened.holdout
        assert await review.label_review("nope:1", status=ReviewStatus.LABELLED, label="x", holdout=False,
                                         by="web:lea", at=at) is None

    async def test_forgetting_a_contact_empties_the_queue_of_their_messages(self, store: Store) -> None:
        review = review_port(store)
        contact, conv = await contact_and_conversation(store, "u1")
        other, other_conv = await contact_and_conversation(store, "u2")
        await review.add_review(_item(conv.id, 1, contact_id=contact.id, text="meine Adresse ist Geheimweg 12"))
        await review.add_review(_item(other_conv.id, 1, contact_id=other.id))
        await store.forget_contact(contact.id)
        assert [i.contact_id for i in await review.review_items()] == [other.id]
        assert await review.get_review(ReviewItem.key(conv.id, 1)) is None

    async def test_a_data_export_holds_the_contacts_review_items(self, store: Store) -> None:
        review = review_port(store)
        contact, conv = await contact_and_conversation(store, "u1")
        await review.add_review(_item(conv.id, 2, contact_id=contact.id, text="zweitens", at_seconds=2))
        await review.add_review(_item(conv.id, 1, contact_id=contact.id, text="erstens", at_seconds=1))
        await review.add_review(_item("c9", 1, contact_id="ct_other"))
        assert [i.text for i in await review.contact_reviews(contact.id)] == ["erstens", "zweitens"]
        exported = await store.export_contact(contact.id)
        assert [(e["text"], e["reasons"], e["status"]) for e in exported["review_queue"]] == [
            ("erstens", ["fallback"], "open"), ("zweitens", ["fallback"], "open")]

    async def test_retention_purges_old_items_of_the_bot_only(self, store: Store) -> None:
        review = review_port(store)
        await review.add_review(_item("c1", 1, at_seconds=0))
        await review.add_review(_item("c1", 2, at_seconds=100))
        await review.add_review(_item("c2", 1, bot=OTHER_BOT, at_seconds=0))
        assert await review.purge_review(BOT, T0 + timedelta(seconds=50)) == 1
        assert sorted(i.id for i in await review.review_items()) == ["c1:2", "c2:1"]
        await store.purge_transcripts(BOT, T0 + timedelta(seconds=150))  # the retention sweep purges the queue too
        assert sorted(i.id for i in await review.review_items()) == ["c2:1"]
