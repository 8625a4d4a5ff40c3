"""Hypothesis strategies for hostile webhook input: random JSON, valid payloads with one
field broken (wrong type, missing, huge), and bodies that are not UTF-8 JSON at all."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

json_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
long_text = st.integers(min_value=1_000, max_value=60_000).map(lambda n: "ü" * n)
nasty_text = st.sampled_from([
    "", " ", "\x00", "\ud800", "\u202e", "🙂" * 50, "<script>alert(1)</script>", "' OR 1=1 --",
    "../../etc/passwd", "%s%n", "\r\n\r\nHTTP/1.1 200 OK", "A" * 5000,
])


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> dict[str, Any]:
    """``valid`` with one to three fields replaced by something of another type, or removed."""
    payload = copy.deepcopy(valid)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(payload)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = payload
        for step in path[:-1]:
            parent = parent[step]
        replacement = draw(st.one_of(json_values, long_text, nasty_text, st.just("__delete__")))
        if replacement == "__delete__" and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = replacement
    return payload


def encode(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")


bad_bodies = st.one_of(
    st.binary(max_size=300),  # anything at all
    st.text(max_size=200).map(lambda t: t.encode("utf-16")),  # valid text, wrong encoding
    st.just('{"update_id": 1, "message": {"text": "latin-1: Grüße"}}'.encode("latin-1")),
    st.just(b'{"a": ' * 200 + b"1" + b"}" * 200),  # nesting a parser handles
    st.just(b"\x00" * 1000),
    st.just(b'{"update_id": 1e400}'),
    st.just(b'{"update_id": NaN}'),
)


#: Nesting deeper than Python's recursion limit: json.loads raises RecursionError, not ValueError.
DEEPLY_NESTED = [b'{"a": ' * 5000 + b"1" + b"}" * 5000, b"[" * 100_000]
#: Not UTF-8 at all (a latin-1 0xff 0xfe): decoding the body as text raises UnicodeDecodeError.
NOT_UTF8 = b'{"update_id": 1, "message": {"text": "\xff\xfe invalid utf-8"}}'
