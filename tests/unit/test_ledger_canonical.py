"""The fast RFC 8785 encoder is byte-identical to the reference encoder (``rfc8785``) on every JSON value a
ledger entry can hold, on both of its paths, and refuses what RFC 8785 cannot represent."""
import json
import math
import struct

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from offerlab.ledger.canonical import (
    MAX_SAFE_INTEGER, CanonicalizationError, _exact, _fast_path_safe, canonicalize, format_number,
)

# Member names mixing characters whose code-point order and UTF-16 order differ (U+E000..U+FFFF sort
# after a surrogate pair in UTF-16 but before it by code point), plus plain and escaped characters.
TRICKY_KEYS = st.text(alphabet=st.sampled_from(["a", "B", "é", "\u20ac", "\ue000", "\uffff", "\U0001f600",
                                                 "\U00010000", "\n", '"', "\\", "\x00", "\x1f", "\x7f"]),
                      max_size=4)
KEYS = st.one_of(st.text(max_size=8), TRICKY_KEYS)
SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(KEYS, inner, max_size=6)), max_leaves=40)
# The same without floats: the values that take the C fast path.
NO_FLOATS = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER),
              st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(KEYS, inner, max_size=6)), max_leaves=40)


def _exact_bytes(value):
    out = []
    _exact(value, out)
    return "".join(out).encode("utf-8")


@settings(max_examples=1000, deadline=None)
@given(JSON)
def test_byte_identical_to_the_reference_encoder(value):
    assert canonicalize(value) == rfc8785.dumps(value)


@settings(max_examples=500, deadline=None)
@given(NO_FLOATS)
def test_the_fast_path_is_byte_identical_to_the_reference(value):
    assert _fast_path_safe(value)
    assert canonicalize(value) == rfc8785.dumps(value) == _exact_bytes(value)


# Floats the fast path handles: non-integral from 1e-4 up, integral below 2**53 (written as integers).
FAST_FLOATS = st.one_of(
    st.floats(min_value=1e-4, max_value=1e15), st.floats(min_value=-1e15, max_value=-1e-4),
    st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER).map(float), st.just(-0.0))
WITH_FAST_FLOATS = st.recursive(st.one_of(st.text(max_size=10), st.integers(-1000, 1000), FAST_FLOATS, st.none()),
                                lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                        st.dictionaries(st.text(max_size=6), inner, max_size=6)),
                                max_leaves=30)


@settings(max_examples=500, deadline=None)
@given(WITH_FAST_FLOATS)
def test_the_fast_path_with_floats_is_byte_identical_to_the_reference(value):
    assert _fast_path_safe(value)
    assert canonicalize(value) == rfc8785.dumps(value)


@settings(max_examples=500, deadline=None)
@given(JSON)
def test_the_exact_path_is_byte_identical_to_the_reference(value):
    assert _exact_bytes(value) == rfc8785.dumps(value)


@settings(max_examples=2000, deadline=None)
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_every_finite_double_bit_pattern_formats_like_ecmascript(bits):
    value = struct.unpack("<d", bits.to_bytes(8, "little"))[0]
    if math.isfinite(value):
        assert format_number(value).encode() == rfc8785.dumps(value)


@pytest.mark.parametrize("value, expected", [
    # RFC 8785 Appendix B (number serialisation samples) and ECMAScript boundary cases.
    (0.0, "0"), (-0.0, "0"), (1.0, "1"), (-1.5, "-1.5"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
    (1e-7, "1e-7"), (1e-6, "0.000001"), (123456789012345680000.0, "123456789012345680000"),
    (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"), (0.1 + 0.2, "0.30000000000000004"),
    (9007199254740992.0, "9007199254740992"), (295147905179352830000.0, "295147905179352830000"),
    (4.5, "4.5"), (2e-3, "0.002"), (0.000001, "0.000001"), (333333333.3333333, "333333333.3333333"),
])
def test_number_samples(value, expected):
    assert format_number(value) == expected


def test_member_names_sort_by_utf16_code_units():
    # U+1F600 is the surrogate pair D83D DE00, which sorts before U+E000 in UTF-16.
    assert canonicalize({"\ue000": 1, "\U0001f600": 2, "a": 3}) == '{"a":3,"\U0001f600":2,"\ue000":1}'.encode()


def test_rfc8785_appendix_example_structure():
    # The structure of RFC 8785 §3.2.3's sorting example.
    value = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
             "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}
    assert canonicalize(value) == rfc8785.dumps(value)
    order = list(json.loads(canonicalize(value)))  # json.loads keeps the encoded member order
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]  # RFC 8785 §3.2.3


@pytest.mark.parametrize("bad", [
    float("nan"), float("inf"), -float("inf"), 2**53, -(2**53), {"x": [1, 2**60]}, {1: "int key"},
    "\ud800", {"k": "lone \udc00 surrogate"}, {"\ud800": 1}, {1, 2}, b"bytes", object(),
])
def test_what_rfc8785_cannot_represent_is_refused(bad):
    with pytest.raises(CanonicalizationError):
        canonicalize(bad)


def test_a_typical_entry_takes_the_fast_path():
    entry = {"experimentId": "e1", "sequence": 7, "eventType": "EXPERIMENT_STARTED", "actor": "pm@company.com",
             "sourceKind": "EXPERIMENT_EVENT", "sourceDocument": "experimentEvents/e1_4",
             "payload": {"fromStatus": "APPROVED", "toStatus": "RUNNING", "version": 4, "payload": {}},
             "snapshotDigest": "a" * 64, "recordedAt": "2026-11-25T13:44:20.123456Z", "prevHash": "0" * 64}
    assert _fast_path_safe(entry)
    assert canonicalize(entry) == rfc8785.dumps(entry)
