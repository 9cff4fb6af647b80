"""The exact percentile of a multiset read in passes, with memory that does not grow with its size.

``np.percentile(values, p)`` (linear interpolation, Hyndman & Fan 1996 definition 7) needs two order
statistics, at ranks ⌊h⌋ and ⌊h⌋+1 with h = (m − 1)·p/100. They are found by radix selection on the IEEE-754
bit pattern: a float64 mapped to ``key = bits | 2⁶³`` (non-negative) or ``~bits`` (negative) is an unsigned
integer in the same order as the floats (the classic radix-sort key; Knuth TAOCP vol. 3 §5.2.5), so a
histogram of the top 16 bits of the keys is a histogram of the values in 65 536 order-preserving buckets.

* Pass 1 counts each bucket and keeps its minimum and maximum: O(65 536) memory.
* If the two ranks fall in different buckets, the lower one is the maximum of its bucket and the upper one
  the minimum of the next non-empty bucket: exact, no more passes. If they fall in one bucket whose minimum
  equals its maximum, that is the value. Otherwise the bucket is either small enough to collect
  (``collect_limit`` values) in the caller's next pass, or is refined by its next 16 bits in another pass
  (at most three refinements: 64 bits).

Exactness: every step partitions the keys by ranges of their bits, which are ranges of the values, and
counts exactly; the final values are read off stored elements, never interpolated from bins. The caller's
passes must see the same multiset each time (the same data, read again).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

BITS = 16
BUCKETS = 1 << BITS
DEFAULT_COLLECT_LIMIT = 1 << 18   # values held to finish a selection (2 MiB of float64)


def order_keys(values: Any) -> Any:
    """Unsigned 64-bit keys ordered like the float64 ``values`` (−0.0 is read as 0.0)."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64) + 0.0
    bits = v.view(np.uint64)
    negative = (bits >> np.uint64(63)).astype(bool)
    return np.where(negative, ~bits, bits | np.uint64(1 << 63))


def linear_rank(size: int, percentile: float) -> tuple[int, int, float]:
    """(lo, hi, weight): the order statistics and weight of numpy's "linear" percentile."""
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must lie in [0, 100], got {percentile}")
    h = (size - 1) * percentile / 100.0
    lo = min(int(math.floor(h)), size - 1)
    return lo, min(lo + 1, size - 1), h - lo


@dataclass
class _Level:
    shift: int                 # bucket = (key >> shift) & 0xFFFF among keys with (key >> (shift + 16)) == prefix
    prefix: int | None         # None at the top level
    offset: int                # how many values lie below this level's range
    counts: Any = None
    mins: Any = None
    maxs: Any = None


@dataclass
class ExactPercentile:
    """Feed the same multiset once per pass with ``add``; call ``end_pass`` after each pass until ``done``."""

    percentile: float
    collect_limit: int = DEFAULT_COLLECT_LIMIT
    total: int = 0
    value: float | None = None
    _level: _Level = field(default_factory=lambda: _Level(64 - BITS, None, 0))
    _collect: tuple[int, int] | None = None  # (shift, bucket prefix) of the keys to collect
    _collected: list = field(default_factory=list)
    _ranks: tuple[int, int, float] | None = None
    passes: int = 0

    @property
    def done(self) -> bool:
        return self.value is not None or (self._ranks is not None and self.total == 0)

    def _init_level(self) -> None:
        import numpy as np

        lvl = self._level
        lvl.counts = np.zeros(BUCKETS, dtype=np.int64)
        lvl.mins = np.full(BUCKETS, np.inf)
        lvl.maxs = np.full(BUCKETS, -np.inf)

    def add(self, values: Any) -> None:
        import numpy as np

        v = np.asarray(values, dtype=np.float64)
        if v.size == 0 or self.done:
            return
        keys = order_keys(v)
        if self._collect is not None:
            shift, prefix = self._collect
            mask = (keys >> np.uint64(shift)) == np.uint64(prefix)
            self._collected.append(v[mask].copy())
            return
        lvl = self._level
        if lvl.counts is None:
            self._init_level()
        if self.passes == 0:
            self.total += int(v.size)
        if lvl.prefix is not None:
            mask = (keys >> np.uint64(lvl.shift + BITS)) == np.uint64(lvl.prefix)
            keys, v = keys[mask], v[mask]
        buckets = ((keys >> np.uint64(lvl.shift)) & np.uint64(BUCKETS - 1)).astype(np.int64)
        np.add.at(lvl.counts, buckets, 1)
        np.minimum.at(lvl.mins, buckets, v)
        np.maximum.at(lvl.maxs, buckets, v)

    def end_pass(self) -> None:
        """Decide after a pass: the value, a collection, or a finer level for the next pass."""
        import numpy as np

        self.passes += 1
        if self._ranks is None:
            if self.total == 0:
                self._ranks = (0, 0, 0.0)
                return
            self._ranks = linear_rank(self.total, self.percentile)
        lo, hi, weight = self._ranks
        if self._collect is not None:
            shift, prefix = self._collect
            values = np.sort(np.concatenate(self._collected)) if self._collected else np.empty(0)
            base = self._level.offset
            v_lo, v_hi = float(values[lo - base]), float(values[hi - base])
            self.value = v_lo + weight * (v_hi - v_lo)
            self._collected = []
            return
        lvl = self._level
        cumulative = np.cumsum(lvl.counts)
        b_lo = int(np.searchsorted(cumulative, lo - lvl.offset, side="right"))
        b_hi = int(np.searchsorted(cumulative, hi - lvl.offset, side="right"))
        if b_lo != b_hi:
            v_lo, v_hi = float(lvl.maxs[b_lo]), float(lvl.mins[b_hi])
            self.value = v_lo + weight * (v_hi - v_lo)
            return
        if lvl.mins[b_lo] == lvl.maxs[b_lo]:
            self.value = float(lvl.mins[b_lo])
            return
        below = int(cumulative[b_lo - 1]) if b_lo else 0
        prefix = b_lo if lvl.prefix is None else (lvl.prefix << BITS) | b_lo
        if int(lvl.counts[b_lo]) <= self.collect_limit or lvl.shift == 0:
            self._level = _Level(lvl.shift, None, lvl.offset + below)
            self._collect = (lvl.shift, prefix)
            return
        self._level = _Level(lvl.shift - BITS, prefix, lvl.offset + below)
