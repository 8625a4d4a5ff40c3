"""Rule and memoization policies over the anchors of `DialogueState`.

Rules (Rasa's RulePolicy): a rule predicts its next action when its first *k* steps
match the last *k* anchors of the conversation (slot / loop steps must match what
happened after the matching anchor; ``condition`` is checked on the state before the
first matched anchor). Longer matches win, then rules with more conditions. A fully matched rule predicts
``action_listen`` unless it says ``wait_for_user_input: false``.

Memoization (Rasa's MemoizationPolicy): the last ``max_history`` anchors, padded with
the session start, looked up exactly in the stories; contradicting stories are dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.dialogue.state import FALLBACK_ACTIONS, LISTEN, Anchor
from core.rasa.stories import ANY_VALUE, Block, Step

START = ("start", "")
MAX_EXPANSIONS = 64


@dataclass(frozen=True, slots=True)
class RuleStep:
    kind: str  # intent | action
    name: str
    entities: frozenset[str] = frozenset()
    asserts: tuple[tuple[str, object], ...] = ()  # ("slot:x" | "loop", value)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    steps: tuple[RuleStep, ...]
    slot_conditions: tuple[tuple[str, object], ...] = ()
    loop_condition: tuple[bool, str | None] = (False, None)  # (has condition, loop name)
    conversation_start: bool = False
    wait_for_user_input: bool = True
    file: str = ""
    line: int = 0


def expand_or(steps: Sequence[Step]) -> list[list[Step]]:
    """Every path through ``or`` alternatives (bounded)."""
    paths: list[list[Step]] = [[]]
    for step in steps:
        if step.kind == "or":
            paths = [p + [alt] for p in paths for alt in step.alternatives][:MAX_EXPANSIONS]
        else:
            for path in paths:
                path.append(step)
    return paths


def _compile_steps(steps: Sequence[Step]) -> tuple[list[RuleStep], list[tuple[str, object]]]:
    compiled: list[RuleStep] = []
    leading: list[tuple[str, object]] = []
    for step in steps:
        if step.kind in ("intent", "action") and step.name:
            entities = frozenset(e for e, _ in step.entities) if step.kind == "intent" else frozenset()
            compiled.append(RuleStep(step.kind, step.name, entities))
        elif step.kind in ("slot", "active_loop"):
            key = f"slot:{step.name}" if step.kind == "slot" else "loop"
            value = step.value if step.kind == "slot" else step.name
            if compiled:
                last = compiled[-1]
                compiled[-1] = RuleStep(last.kind, last.name, last.entities, (*last.asserts, (key, value)))
            else:
                leading.append((key, value))
    return compiled, leading


def compile_rules(blocks: Iterable[Block]) -> list[Rule]:
    rules = []
    for block in blocks:
        slot_conditions = [(c.name or "", c.value) for c in block.condition if c.kind == "slot"]
        loop_steps = [c for c in block.condition if c.kind == "active_loop"]
        for path in expand_or(block.steps):
            steps, leading = _compile_steps(path)
            if not steps:
                continue
            conditions = list(slot_conditions)
            loop = (True, loop_steps[-1].name) if loop_steps else (False, None)
            for key, value in leading:  # slot/loop steps before the first anchor act as conditions
                if key == "loop":
                    loop = (True, value if isinstance(value, str) else None)
                else:
                    conditions.append((key[5:], value))
            rules.append(Rule(block.name, tuple(steps), tuple(conditions), loop, block.conversation_start,
                              block.wait_for_user_input, block.file, block.line))
    return rules


def _value_matches(expected: object, actual: object) -> bool:
    if expected is ANY_VALUE:
        return actual is not None
    return expected == actual


def _anchor_matches(step: RuleStep, anchor: Anchor) -> bool:
    if step.kind != anchor.kind or step.name != anchor.name:
        return False
    if step.entities and not step.entities <= anchor.entities:
        return False
    for key, value in step.asserts:
        if key not in anchor.after or not _value_matches(value, anchor.after[key]):
            return False
    return True


class RulePolicy:
    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)

    def _conditions_hold(self, rule: Rule, first: Anchor) -> bool:
        for slot, value in rule.slot_conditions:
            if not _value_matches(value, first.slots_before.get(slot)):
                return False
        has_loop, loop = rule.loop_condition
        if has_loop:
            if loop is None:
                return first.loop_before is None
            return first.loop_before == loop or loop in first.loops_seen
        return True

    def predict(
        self,
        anchors: Sequence[Anchor],
        *,
        only_loop: str | None = None,
    ) -> tuple[str | None, Rule | None]:
        """(action, rule) of the longest, then most specific, matching rule; ``only_loop`` keeps rules conditioned on that loop."""
        best: tuple[tuple[int, int], str, Rule] | None = None
        for rule in self.rules:
            if only_loop is not None and rule.loop_condition != (True, only_loop):
                continue
            specificity = len(rule.slot_conditions) + int(rule.loop_condition[0]) + int(rule.conversation_start)
            for k in range(min(len(rule.steps), len(anchors)), 0, -1):
                if best is not None and (k, specificity) <= best[0]:
                    break
                tail = anchors[len(anchors) - k:]
                if rule.conversation_start and len(anchors) != k:
                    continue
                if not all(_anchor_matches(rule.steps[i], tail[i]) for i in range(k)):
                    continue
                if not self._conditions_hold(rule, tail[0]):
                    continue
                if k == len(rule.steps):
                    if rule.wait_for_user_input:
                        best = ((k, specificity), LISTEN, rule)
                    break
                following = rule.steps[k]
                if following.kind == "action":
                    best = ((k, specificity), following.name, rule)
                break
        if best is None:
            return None, None
        return best[1], best[2]


def _key(anchor_kind: str, name: str) -> tuple[str, str]:
    return ("i" if anchor_kind == "intent" else "a", name)


class MemoizationPolicy:
    def __init__(self, stories: Iterable[Block], *, max_history: int = 5, augmented: bool = False) -> None:
        self.max_history = max_history
        self.augmented = augmented
        self.lookup: dict[tuple[tuple[str, str], ...], str | None] = {}
        self.partial: dict[tuple[tuple[str, str], ...], str | None] = {}  # augmented: shorter histories
        for sequence in self._sequences(list(stories)):
            self._learn(sequence)

    @staticmethod
    def _sequences(stories: list[Block]) -> list[list[tuple[str, str]]]:
        """Anchor sequences of every story, with checkpoints joined and ``or`` expanded."""
        pieces: list[tuple[str | None, list[tuple[str, str]], list[str]]] = []
        for story in stories:
            for path in expand_or(story.steps):
                starts = [s.name for s in itertools.takewhile(lambda s: s.kind == "checkpoint", path)]
                body = path[len(starts):]
                ends: list[str] = []
                while body and body[-1].kind == "checkpoint":
                    ends.insert(0, body.pop().name or "")
                anchors = [_key(s.kind, s.name) for s in body if s.kind in ("intent", "action") and s.name and s.name != LISTEN]
                for start in starts or [None]:
                    pieces.append((start, anchors, ends))
        sequences: list[list[tuple[str, str]]] = []

        def walk(prefix: list[tuple[str, str]], ends: list[str], depth: int) -> None:
            continuing = [p for p in pieces if p[0] is not None and p[0] in ends]
            if not continuing or depth > 4 or len(sequences) > 5000:
                sequences.append(prefix)
                return
            for _, anchors, more in continuing:
                walk(prefix + anchors, more, depth + 1)

        for start, anchors, ends in pieces:
            if start is None:
                walk(list(anchors), ends, 0)
        return sequences

    def _window(self, anchors: Sequence[tuple[str, str]], end: int) -> tuple[tuple[str, str], ...]:
        begin = end - self.max_history
        window = list(anchors[max(0, begin):end])
        if begin < 0:
            window.insert(0, START)
        return tuple(window)

    def _learn(self, sequence: list[tuple[str, str]]) -> None:
        for index in range(len(sequence) + 1):
            if index < len(sequence):
                kind, name = sequence[index]
                target = name if kind == "a" else LISTEN
            else:
                target = LISTEN
            if index == 0 and target == LISTEN:
                continue
            key = self._window(sequence, index)
            self._store(self.lookup, key, target)
            if self.augmented:
                plain_key = tuple(k for k in key if k != START)
                for size in range(1, len(plain_key)):
                    self._store(self.partial, plain_key[len(plain_key) - size:], target)

    @staticmethod
    def _store(table: dict[tuple[tuple[str, str], ...], str | None], key: tuple[tuple[str, str], ...], target: str) -> None:
        if key in table and table[key] != target:
            table[key] = None  # contradicting stories: no memory
        else:
            table[key] = target

    def predict(self, anchors: Sequence[Anchor]) -> str | None:
        keys = [_key(a.kind, a.name) for a in anchors if a.name not in FALLBACK_ACTIONS]
        exact = self.lookup.get(self._window(keys, len(keys)))
        if exact is not None or not self.augmented:
            return exact
        for size in range(min(self.max_history, len(keys)) - 1, 0, -1):
            found = self.partial.get(tuple(keys[len(keys) - size:]))
            if found is not None:
                return found
        return None
