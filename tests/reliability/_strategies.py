"""Hypothesis strategies for hostile input, shared by the callable and Pub/Sub fuzz tests."""
from __future__ import annotations

from hypothesis import strategies as st

unicode_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                     st.floats(allow_nan=True, allow_infinity=True), unicode_text)
json_values = st.recursive(_scalars, lambda kids: st.one_of(st.lists(kids, max_size=6),
                                                            st.dictionaries(unicode_text, kids, max_size=6)),
                           max_leaves=25)


def deep(depth: int, key: str) -> dict:
    node: dict = {key: "x"}
    for _ in range(depth):
        node = {key: node}
    return node


# Values no field of any request model accepts: an object nested past MAX_JSON_DEPTH (a dict is no
# string, number, bool, list or enum, and too deep for a JSON object field), a string longer than
# every bound that is neither blank nor numeric, a list far longer than any bound, and the
# non-finite numbers JSON cannot carry (json.dumps sends the NaN/Infinity tokens).
always_invalid = st.one_of(
    st.builds(deep, st.integers(8, 40), unicode_text.filter(bool)),
    st.builds(lambda ch, n: "é" + ch * n, st.sampled_from(["x", "😀", "\u202e", "名"]), st.integers(4_100, 70_000)),
    st.builds(lambda n: [deep(8, "k")] * n, st.integers(51, 400)),
    st.sampled_from([float("nan"), float("inf"), float("-inf")]),
)

