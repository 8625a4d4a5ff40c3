"""The label file takes any customer text: what `nlu_yaml` writes, the Rasa NLU loader reads back."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from core.rasa.nlu_data import load_nlu_file
from core.review.labels import example_text, nlu_yaml

INTENTS = st.sampled_from(["greet", "order_status", "server_down"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=80), INTENTS, st.sampled_from([None, "de", "en"])),
                min_size=1, max_size=8))
def test_any_customer_text_round_trips_through_the_rasa_loader(
    tmp_path_factory: object, examples: list[tuple[str, str, str | None]]
) -> None:
    path = Path(str(tmp_path_factory.mktemp("labels"))) / "demo.yml"  # type: ignore[attr-defined]
    path.write_text(nlu_yaml(examples, comment="test"), encoding="utf-8")
    loaded = {(e.text, e.intent, e.language) for e in load_nlu_file(path).examples}
    expected = {(example_text(t), i, lang) for t, i, lang in examples if example_text(t)}
    assert loaded == expected
    assert all(not e.entities for e in load_nlu_file(path).examples)  # customer text is never an annotation
