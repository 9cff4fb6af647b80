"""The fast RFC 8785 encoder is byte-identical to the reference encoder (``rfc8785``) on every JSON value a
ledger entry can hold, on both of its paths, and refuses what RFC 8785 cannot represent.

The properties are only worth something if they can fail: the last tests break each check of the fast
path in turn (the walk, the astral-key check, the member-name check) and require hypothesis to find a
value on which the broken encoder differs from the reference.
"""
import collections
import enum
import hashlib
import json
import math
import struct

import pytest
import rfc8785
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from offerlab.ledger import canonical
from offerlab.ledger.canonical import (
    _CLEAN, _FIX, _SLOW, MAX_SAFE_INTEGER, CanonicalizationError, _exact, _fast_path_safe, _scan, canonicalize,
    format_number,
)
from offerlab.ledger.chain import canonical_entry, entry_hash

# Member names mixing characters whose code-point order and UTF-16 order differ (U+E000..U+FFFF sort
# after a surrogate pair in UTF-16 but before it by code point), plus plain and escaped characters.
TRICKY_KEYS = st.text(alphabet=st.sampled_from(["a", "B", "é", "\u20ac", "\ue000", "\uffff", "\U0001f600",
                                                 "\U00010000", "\n", '"', "\\", "\x00", "\x1f", "\x7f"]),
                      max_size=4)
KEYS = st.one_of(st.text(max_size=8), TRICKY_KEYS)
# Strings: hypothesis' text (no lone surrogates: a ledger value is valid UTF-8) plus the characters with
# special handling in RFC 8785 §3.2.2.2 (every control character, '"', '\\', DEL, U+2028/9, astral).
# Pieces that look like number tokens (":1.0,", "e+1") must stay inside their string.
SPECIAL_PIECES = st.sampled_from([chr(c) for c in range(0x20)] + ['"', "\\", "/", "\x7f", "\u2028", "\u2029",
                                                                  "\ufeff", "\U0001f600", "%", "%s", "e+1", ":1.0,", "a"])
STRINGS = st.one_of(st.text(max_size=20), st.lists(SPECIAL_PIECES, max_size=8).map("".join))


def _ulps_from(value: float, steps: int) -> float:
    for _ in range(abs(steps)):
        value = math.nextafter(value, math.inf if steps > 0 else -math.inf)
    return value


# Doubles around every boundary where Python's repr and ECMAScript's Number::toString change layout
# (1e-7 and 1e21 for ES, 1e-4 and 1e16 for repr; ECMA-262 §6.1.6.1.20), around 2**53 (the last integer
# the fast path writes as an integer), the subnormals and the extremes, each a few ulps either way.
BOUNDARIES = [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.5, 1.0, 1e15, 1e16, 1e17, 1e20, 1e21, 1e22, 2.0**52, 2.0**53,
              2.0**53 + 2, 9999999999999998.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308]
BOUNDARY_FLOATS = st.builds(
    lambda base, steps, negative: -_ulps_from(base, steps) if negative else _ulps_from(base, steps),
    st.sampled_from(BOUNDARIES), st.integers(-3, 3), st.booleans(),
).filter(math.isfinite)
FLOATS = st.one_of(st.floats(allow_nan=False, allow_infinity=False), BOUNDARY_FLOATS,
                   st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER).map(float), st.just(-0.0),
                   st.floats(min_value=-1e-300, max_value=1e-300, allow_subnormal=True))
INTEGERS = st.one_of(st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER),
                     st.sampled_from([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 10**15, -(10**15), 0]))
SCALARS = st.one_of(st.none(), st.booleans(), INTEGERS, FLOATS, STRINGS)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(KEYS, inner, max_size=6)), max_leaves=40)
CONTAINERS = st.one_of(st.lists(JSON, max_size=4), st.dictionaries(KEYS, JSON, max_size=5))
# The same without floats: the values that take the C fast path.
NO_FLOAT_SCALARS = st.one_of(st.none(), st.booleans(), INTEGERS, STRINGS)
NO_FLOATS = st.recursive(
    st.one_of(st.lists(NO_FLOAT_SCALARS, max_size=5), st.dictionaries(st.text(max_size=8), NO_FLOAT_SCALARS, max_size=6)),
    lambda inner: st.one_of(st.lists(st.one_of(NO_FLOAT_SCALARS, inner), max_size=5),
                            st.dictionaries(st.text(max_size=8), st.one_of(NO_FLOAT_SCALARS, inner), max_size=6)),
    max_leaves=20)


def _exact_bytes(value):
    out = []
    _exact(value, out)
    return "".join(out).encode("utf-8")


@settings(max_examples=1000, deadline=None)
@given(JSON)
def test_byte_identical_to_the_reference_encoder(value):
    assert canonicalize(value) == rfc8785.dumps(value)


@settings(max_examples=300, deadline=None)
@given(CONTAINERS)
def test_containers_are_byte_identical_to_the_reference_encoder(value):
    # Containers are what the fast path handles; scalars at the top level always take the exact path.
    assert canonicalize(value) == rfc8785.dumps(value)


@settings(max_examples=500, deadline=None)
@given(NO_FLOATS)
def test_the_fast_path_is_byte_identical_to_the_reference(value):
    assert _fast_path_safe(value)
    assert canonicalize(value) == rfc8785.dumps(value) == _exact_bytes(value)


# Floats the fast path handles: non-integral from 1e-4 up to 1e16, integral within ±(2**53 − 1)
# (written as integers).
FAST_FLOATS = st.one_of(
    st.floats(min_value=1e-4, max_value=1e16, exclude_max=True), st.floats(min_value=-1e16, max_value=-1e-4,
                                                                           exclude_min=True),
    st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER).map(float), st.just(-0.0),
).filter(lambda x: not x.is_integer() or abs(x) <= MAX_SAFE_INTEGER)
WITH_FAST_FLOATS = st.recursive(
    st.lists(st.one_of(st.text(max_size=10), st.integers(-1000, 1000), FAST_FLOATS, st.none()), max_size=5),
    lambda inner: st.one_of(st.lists(st.one_of(FAST_FLOATS, inner), max_size=5),
                            st.dictionaries(st.text(max_size=6), st.one_of(FAST_FLOATS, st.text(max_size=4), inner),
                                            max_size=6)),
    max_leaves=30)


@settings(max_examples=500, deadline=None)
@given(WITH_FAST_FLOATS)
def test_the_fast_path_with_floats_is_byte_identical_to_the_reference(value):
    assert _fast_path_safe(value)
    assert canonicalize(value) == rfc8785.dumps(value)


@settings(max_examples=1000, deadline=None)
@given(FLOATS)
def test_every_float_in_a_container_matches_the_reference_on_whichever_path_it_takes(value):
    assert canonicalize([value]) == rfc8785.dumps([value])
    assert canonicalize({"v": value, "w": [value, "x"]}) == rfc8785.dumps({"v": value, "w": [value, "x"]})
    # The walk sends exactly the doubles repr() lays out like ES (or that only lose a ".0") to the C encoder.
    non_integral_positional = not value.is_integer() and 1e-4 <= abs(value) < 1e16
    expected = _CLEAN if non_integral_positional else _FIX if abs(value) <= MAX_SAFE_INTEGER and value.is_integer() else _SLOW
    assert _scan([value]) == expected


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
        assert canonicalize([value]) == rfc8785.dumps([value])


@pytest.mark.parametrize("value, expected", [
    # RFC 8785 Appendix B (number serialisation samples) and ECMAScript boundary cases.
    (0.0, "0"), (-0.0, "0"), (1.0, "1"), (-1.5, "-1.5"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
    (1e-7, "1e-7"), (1e-6, "0.000001"), (123456789012345680000.0, "123456789012345680000"),
    (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"), (0.1 + 0.2, "0.30000000000000004"),
    (9007199254740992.0, "9007199254740992"), (295147905179352830000.0, "295147905179352830000"),
    (4.5, "4.5"), (2e-3, "0.002"), (0.000001, "0.000001"), (333333333.3333333, "333333333.3333333"),
    (1e-5, "0.00001"), (1e16, "10000000000000000"), (-1e-7, "-1e-7"), (1.5e300, "1.5e+300"),
])
def test_number_samples(value, expected):
    assert format_number(value) == expected
    assert canonicalize([value]) == f"[{expected}]".encode()


def test_member_names_sort_by_utf16_code_units():
    # U+1F600 is the surrogate pair D83D DE00, which sorts before U+E000 in UTF-16.
    assert canonicalize({"\ue000": 1, "\U0001f600": 2, "a": 3}) == '{"a":3,"\U0001f600":2,"\ue000":1}'.encode()
    assert canonicalize([{"\ue000": 1, "\U0001f600": 2}]) == '[{"\U0001f600":2,"\ue000":1}]'.encode()


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
    [float("nan")], {"x": [float("inf")]}, [2**53], [-(2**53)], {"a": {"b": {1.5: "float key"}}},
    [{True: 1}], [{None: 1}], {"a": [{"b": {2: "deep int key"}}]}, [b"bytes"], {"k": {1, 2}}, [object()],
])
def test_what_rfc8785_cannot_represent_is_refused(bad):
    with pytest.raises(CanonicalizationError):
        canonicalize(bad)
    with pytest.raises(Exception):  # noqa: B017 - the reference refuses it too (its own error types)
        rfc8785.dumps(bad)


NON_STR_KEYS = st.one_of(st.integers(-10, 10), st.floats(allow_nan=False), st.booleans(), st.none())


@settings(max_examples=150, deadline=None)
@given(CONTAINERS, NON_STR_KEYS, st.data())
def test_a_non_string_member_name_anywhere_is_refused(value, key, data):
    # Plant a dict with a non-string name somewhere inside a valid value: the C encoder would write it
    # as a string ("1", "true", "null"); the reference and this module refuse it.
    planted = {key: "x"}
    if isinstance(value, dict):
        value = {**value, data.draw(st.text(max_size=3)): [planted]}
    else:
        value = [*value, {"k": planted}]
    with pytest.raises(CanonicalizationError):
        canonicalize(value)


UNSAFE_INTEGERS = st.one_of(st.integers(min_value=MAX_SAFE_INTEGER + 1), st.integers(max_value=-MAX_SAFE_INTEGER - 1))


@settings(max_examples=100, deadline=None)
@given(CONTAINERS, UNSAFE_INTEGERS)
def test_an_integer_beyond_the_safe_range_anywhere_is_refused(value, number):
    value = {**value, "n": {"k": [number]}} if isinstance(value, dict) else [*value, [number]]
    with pytest.raises(CanonicalizationError):
        canonicalize(value)


class _Float(float):
    pass


class _Int(int):
    pass


class _Str(str):
    pass


class _Color(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize("value", [
    [_Float(1.0)], [_Float(1e-7)], {"x": _Float(2.5)}, [_Int(7)], [_Int(2**60)], [_Color.RED], [_Str("a\n")],
    {_Str("b"): 1, "a": 2}, collections.OrderedDict([("b", 1), ("a", 2.0)]), collections.OrderedDict([(1, "x")]),
    {"t": (1, 2.0, {"k": 1})}, [(1.0, "x")], {"t": ({1: "x"},)}, [[_Int(2**53)]],
])
def test_subclasses_and_tuples_are_encoded_or_refused_like_the_reference(value):
    # Not ledger values (Firestore returns exact types), but the encoder must not be fooled by them: the C
    # encoder writes a float subclass with repr() and an int subclass beyond 2**53 as it is.
    assert not _fast_path_safe(value)
    try:
        expected = rfc8785.dumps(value)
    except Exception:  # noqa: BLE001 - the reference refuses it
        with pytest.raises(CanonicalizationError):
            canonicalize(value)
    else:
        assert canonicalize(value) == expected


def test_a_typical_entry_takes_the_fast_path():
    entry = {"experimentId": "e1", "sequence": 7, "eventType": "EXPERIMENT_STARTED", "actor": "pm@company.com",
             "sourceKind": "EXPERIMENT_EVENT", "sourceDocument": "experimentEvents/e1_4",
             "payload": {"fromStatus": "APPROVED", "toStatus": "RUNNING", "version": 4, "payload": {}},
             "snapshotDigest": "a" * 64, "recordedAt": "2026-11-25T13:44:20.123456Z", "prevHash": "0" * 64}
    assert _fast_path_safe(entry)
    assert canonicalize(entry) == rfc8785.dumps(entry)


ENVELOPE_STRINGS = ("actor", "eventType", "experimentId", "prevHash", "recordedAt", "sourceDocument", "sourceKind",
                    "snapshotDigest")


@pytest.mark.parametrize("field", ENVELOPE_STRINGS)
@pytest.mark.parametrize("text", ['say "hi"', "back\\slash", "tab\there", "\x00", "\x1f", "\x7f", "é€\U0001f600", "%s %d"])
def test_the_entry_frame_escapes_any_single_field_that_needs_it(field, text):
    # chain.canonical_entry quotes the string fields as they are when escaping all of them at once changes
    # nothing but the quotes; one field needing an escape must switch every field to the escaped frame.
    entry = {"experimentId": "e1", "sequence": 3, "eventType": "E", "actor": "a", "sourceKind": "K",
             "sourceDocument": "d/1", "payload": {"x": [1, 2.5, None]}, "snapshotDigest": None,
             "recordedAt": "2026-11-25T13:44:20.123456Z", "prevHash": "0" * 64, "hash": "ignored", field: text}
    body = {k: v for k, v in entry.items() if k != "hash"}
    assert canonical_entry(entry) == rfc8785.dumps(body)
    assert entry_hash(entry) == hashlib.sha256(entry["prevHash"].encode() + rfc8785.dumps(body)).hexdigest()


def test_a_lone_surrogate_in_an_entry_is_refused_not_crashed_on():
    entry = {"experimentId": "e1", "sequence": 1, "eventType": "E", "actor": "a", "sourceKind": "K",
             "sourceDocument": "d/1", "payload": {}, "snapshotDigest": None,
             "recordedAt": "2026-11-25T13:44:20.123456Z", "prevHash": "\ud800", "hash": "h"}
    with pytest.raises(CanonicalizationError):
        entry_hash(entry)
    with pytest.raises(CanonicalizationError):
        entry_hash({**entry, "extra": 1})  # the generic path
    with pytest.raises(CanonicalizationError):
        canonical_entry({**entry, "prevHash": "p", "payload": {"k": "\udfff"}})


# --- The properties can fail: break one check of the fast path, and hypothesis finds a counterexample.

MUTANT_SETTINGS = settings(max_examples=5000, database=None, deadline=None,
                           suppress_health_check=list(HealthCheck))


def _differs_from_reference(value) -> bool:
    try:
        expected = rfc8785.dumps(value)
    except Exception:  # noqa: BLE001 - refused by the reference: then ours must refuse too
        expected = None
    try:
        return canonicalize(value) != expected
    except CanonicalizationError:
        return expected is not None


def test_the_property_catches_a_fast_path_without_the_walk(monkeypatch):
    monkeypatch.setattr(canonical, "_scan", lambda obj: _CLEAN)  # trust the C encoder with every value
    counterexample = find(CONTAINERS, _differs_from_reference, settings=MUTANT_SETTINGS)
    assert _differs_from_reference(counterexample)  # e.g. [1.0]: the C encoder writes "[1.0]", RFC 8785 "[1]"


@pytest.mark.parametrize("value", [[1.0], [1e-05], [1e16], [2**60], [-0.0], {"a": {1: "x"}}])
def test_each_check_of_the_walk_matters(monkeypatch, value):
    assert _scan(value) in (_FIX, _SLOW)
    monkeypatch.setattr(canonical, "_scan", lambda obj: _CLEAN)
    assert _differs_from_reference(value)


def test_the_property_catches_a_fast_path_without_the_astral_check(monkeypatch):
    class _Never:
        @staticmethod
        def search(text):
            return None

    monkeypatch.setattr(canonical, "_ASTRAL", _Never)
    counterexample = find(st.dictionaries(TRICKY_KEYS, st.integers(0, 9), max_size=6), _differs_from_reference,
                          settings=MUTANT_SETTINGS)
    assert _differs_from_reference(counterexample)  # two names whose code-point and UTF-16 orders disagree


def test_the_property_catches_a_c_encoder_that_sorts_by_code_point_and_prints_repr():
    def naive(value):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()

    def differs(value):
        try:
            return naive(value) != rfc8785.dumps(value)
        except (TypeError, ValueError):
            return True

    assert find(CONTAINERS, differs, settings=MUTANT_SETTINGS) is not None
