"""RFC 8785 (JSON Canonicalization Scheme, JCS) encoding, fast.

The ledger hashes ``canonical(entry)``; anyone re-reading an entry must get the same bytes, so the
encoding is the standard one, RFC 8785: no whitespace, object members sorted by the UTF-16 code units
of their names (§3.2.3), strings escaped as ECMAScript ``JSON.stringify`` does (§3.2.2.2), numbers as
ECMAScript ``Number.prototype.toString`` (§3.2.2.3, ECMA-262 §6.1.6.1.20), output in UTF-8.

Why not just ``rfc8785.dumps``: the reference package walks the value in Python, byte by byte into a
``BytesIO``, and is 4–5× slower than this module (benchmarks/bench_ledger.py). The fast path here hands
the value to the C encoder of the standard library's ``json`` module, whose output is RFC 8785 exactly
when the following hold; ``_scan`` checks them in one walk over the containers before encoding:

* every member name is a ``str`` (the C encoder would silently turn ``1``, ``1.5``, ``True``, ``None``
  names into strings; RFC 8785 has no such names, and the reference refuses them);
* every value is of an exact JSON type (``str``, ``int``, ``float``, ``bool``, ``None``, ``dict``,
  ``list``): subclasses, tuples and the rest take the exact path, which treats them as the reference does;
* every integer lies within ±(2**53 − 1): RFC 8785 §3.2.2.3 numbers are IEEE 754 doubles, and the
  reference refuses larger integers;
* every float is written by ``float.__repr__`` as ECMAScript writes it. Both print the shortest digit
  string that round-trips (Python: David Gay's ``dtoa`` mode 0; ECMA-262 §6.1.6.1.20 step 5), and both
  lay it out positionally for non-integral values with 1e-4 <= |x| < 1e16 (Python switches to an exponent
  below 1e-4 and from 1e16, ES below 1e-6 and from 1e21). The differences are integral values, which
  ``repr`` writes with a ``.0`` (``_FIX``: they are passed to the C encoder as integers, whose digits
  are ES's below 2**53, where doubles are spaced at most 1 apart), and exponent forms (``1e-05``,
  ``1e+16``), which take the exact path;
* member names sort the same by code point (Python's ``sort_keys``) as by UTF-16 code unit (RFC 8785):
  true unless the text holds a character above U+FFFF (its surrogate pair sorts below U+E000..U+FFFF in
  UTF-16). Checked on the output: ``str.isascii`` in the common case, else a regex for astral characters.

Strings: the C encoder with ``ensure_ascii=False`` escapes exactly the characters RFC 8785 §3.2.2.2
escapes (``"`` ``\\`` and U+0000..U+001F, with the short forms \\b \\t \\n \\f \\r, else ``\\u00xx`` in lower
case) and leaves everything else literal; lone surrogates cannot be encoded to UTF-8 and are refused.

A regex over the encoder's output instead of the walk (to find ``1.0``, ``1e-05``, long integers) was
tried and measured slower: on the 2-core machine one ``re`` pass over a ledger entry's text
costs more than the walk, and it cannot see member-name types at all, so a walk is needed anyway.

Everything else goes through ``_exact``, a straightforward implementation of RFC 8785.
tests/unit/test_ledger_canonical.py proves both paths byte-identical to the reference package
(``rfc8785``) with hypothesis, and checks that the properties can fail.
"""
from __future__ import annotations

import math
import re
from json.encoder import c_encode_basestring, c_make_encoder  # type: ignore[attr-defined]
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1  # ECMAScript Number.MAX_SAFE_INTEGER; RFC 8785 §3.2.2.3

_NONE = type(None)
_STR = frozenset({str})
# Values the C encoder writes exactly as RFC 8785 does, whatever their content (strings: §3.2.2.2).
_PLAIN = frozenset({str, bool, _NONE})
# The exact types the fast path accepts; numbers and containers are checked one by one.
_FAST = _PLAIN | {int, float, dict, list}
# A character outside the Basic Multilingual Plane: encoded as a surrogate pair in UTF-16 (RFC 8785 §3.2.3).
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


class CanonicalizationError(ValueError):
    """The value cannot be represented in RFC 8785 JSON (NaN, ±inf, an integer beyond 2**53, a lone
    surrogate, a non-string member name, a non-JSON type)."""


def _refuse(obj: Any) -> Any:
    raise CanonicalizationError(f"unsupported type: {type(obj).__name__}")


if c_make_encoder is None or c_encode_basestring is None:  # pragma: no cover - CPython always has _json
    _c_encode = None
else:
    # markers=None: no cycle detection (ledger values come from JSON/Firestore and cannot be cyclic);
    # indent=None, separators "," and ":"; sort_keys=True; skipkeys=False; allow_nan=False.
    _c_encode = c_make_encoder(None, _refuse, c_encode_basestring, None, ":", ",", True, False, False)


_CLEAN, _FIX, _SLOW = 0, 1, 2
assert MAX_SAFE_INTEGER == 9007199254740991  # spelt out in _scan


def _scan(obj: Any) -> int:
    """How the C encoder's output for ``obj`` (an exact ``dict`` or ``list``) relates to RFC 8785, up to
    the key-order check on the output:

    * ``_CLEAN`` — identical;
    * ``_FIX`` — identical once integral floats are written as integers (``1.0`` → ``1``);
    * ``_SLOW`` — take the exact path: a float that repr writes with an exponent (non-integral with
      |x| < 1e-4 or >= 1e16, integral beyond 2**53) or not finite, an unsafe integer, a member name that
      is not a ``str``, a value of another type (tuples, subclasses, anything non-JSON).
    """
    if type(obj) is dict:
        if not _STR.issuperset(map(type, obj)):  # member names: exact str (one C pass over the keys)
            return _SLOW
        values: Any = obj.values()
    else:
        values = obj
    types = set(map(type, values))  # one C pass; most containers hold only strings, bools and nulls
    if types <= _PLAIN:
        return _CLEAN
    if not types <= _FAST:
        return _SLOW
    status = _CLEAN
    for value in values:  # the literals below are MAX_SAFE_INTEGER, 1e-4 and 1e16: constants load faster than globals
        t = type(value)
        if t is str:  # identity first: most values are strings
            continue
        if t is int:
            if -9007199254740991 <= value <= 9007199254740991:
                continue
            return _SLOW
        if t is float:
            if value.is_integer():  # false for NaN and infinities
                if -9007199254740991 <= value <= 9007199254740991:
                    status = _FIX
                    continue
                return _SLOW
            if 1e-4 <= abs(value) < 1e16:  # repr() is positional here; false for NaN and infinities
                continue
            return _SLOW
        if t is list and set(map(type, value)) <= _PLAIN:  # a list of strings: no call needed
            continue
        if t is dict or t is list:
            inner = _scan(value)
            if inner:
                if inner == _SLOW:
                    return _SLOW
                status = _FIX
    return status


def _fast_path_safe(obj: Any) -> bool:
    """True when ``canonical_str`` can use the C encoder for ``obj`` (possibly after ``_integral_floats_as_ints``)."""
    return (type(obj) is dict or type(obj) is list) and _scan(obj) != _SLOW


def _integral_floats_as_ints(obj: Any) -> Any:
    t = type(obj)
    if t is float:
        return int(obj) if obj.is_integer() else obj
    if t is dict:
        return {key: _integral_floats_as_ints(value) for key, value in obj.items()}
    if t is list:
        return [_integral_floats_as_ints(value) for value in obj]
    return obj


def canonicalize(obj: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON value (dict, list, str, int, float, bool, None)."""
    try:
        return canonical_str(obj).encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalizationError("input contains a lone surrogate") from None


def canonical_str(obj: Any) -> str:
    """The canonical text before UTF-8 encoding (lone surrogates are only refused by the encoding)."""
    t = type(obj)
    if (t is dict or t is list) and _c_encode is not None:
        status = _scan(obj)
        if status != _SLOW:
            if status == _FIX:
                obj = _integral_floats_as_ints(obj)
            text = "".join(_c_encode(obj, 0))
            # A character above U+FFFF may reorder member names under UTF-16 ordering: take the exact path.
            if text.isascii() or _ASTRAL.search(text) is None:
                return text
    out: list[str] = []
    _exact(obj, out)
    return "".join(out)


def canonical_text(obj: Any) -> str:
    """``canonicalize`` as a str (for documentation and debugging)."""
    return canonicalize(obj).decode("utf-8")


def format_number(value: float) -> str:
    """ECMAScript Number::toString (ECMA-262 §6.1.6.1.20) for a finite double, as RFC 8785 §3.2.2.3 requires.

    ``repr`` gives the shortest digit string that round-trips (the same digits ES chooses); only the
    layout differs, so the digits and decimal exponent are re-laid out by the ES rules.
    """
    if math.isnan(value) or math.isinf(value):
        raise CanonicalizationError(f"{value!r} is not representable in RFC 8785 JSON")
    if value == 0:
        return "0"  # ES prints -0 as "0"
    text = repr(value)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    int_part, _, frac_part = mantissa.partition(".")
    if int_part != "0":
        n = len(int_part) + exponent  # value = 0.d1d2d3... × 10**n
        digits = (int_part + frac_part).rstrip("0")
    else:
        stripped = frac_part.lstrip("0")
        n = exponent - (len(frac_part) - len(stripped))
        digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        exp = ("+" if e > 0 else "-") + str(abs(e))
        body = (digits if k == 1 else digits[0] + "." + digits[1:]) + "e" + exp
    return sign + body


def _utf16_key(item: tuple[str, Any]) -> bytes:
    return item[0].encode("utf-16-be", "surrogatepass")


def _exact(obj: Any, out: list[str]) -> None:
    """RFC 8785, written for clarity; used for floats and rare keys, and as the property tests' twin."""
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        out.append(c_encode_basestring(obj))  # str subclasses (str enums) by value, like the reference
    elif isinstance(obj, bool):  # a bool subclass that is neither True nor False cannot exist; defensive
        out.append("true" if obj else "false")
    elif isinstance(obj, int):
        number = int(obj)
        if not -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
            raise CanonicalizationError(f"{number} exceeds the safe integer range of RFC 8785 JSON")
        out.append(str(number))
    elif isinstance(obj, float):
        out.append(format_number(float(obj)))
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for index, item in enumerate(obj):
            if index:
                out.append(",")
            _exact(item, out)
        out.append("]")
    elif isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                raise CanonicalizationError("object member names must be strings")
        out.append("{")
        for index, (key, value) in enumerate(sorted(obj.items(), key=_utf16_key)):
            if index:
                out.append(",")
            out.append(c_encode_basestring(key))
            out.append(":")
            _exact(value, out)
        out.append("}")
    else:
        raise CanonicalizationError(f"unsupported type: {type(obj).__name__}")
