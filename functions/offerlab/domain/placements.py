"""Placements: where an offer is shown, and the layer that makes its experiments mutually exclusive.

Pure. docs/program.md §2 is the published specification (with golden vectors in
tests/unit/data/layer-vectors.json):

    layerBucket(placement, userId) = bucket("layer:" + placement, userId)      # API.md §2's bucket

Each experiment that starts in a placement is given *traffic segments*: disjoint ranges ``[start, end)`` of
layer buckets whose widths sum to ``round(trafficPercentage * 100)``. A user is in the experiment's
traffic when their layer bucket falls in one of its segments; the experiment's own hashes (holdout,
coverage, arm) then decide within that traffic. Segments are allocated at the start (lowest free buckets
first) and never move while the experiment holds them, so raising coverage never moves a user between
experiments, and no two RUNNING/PAUSED experiments of a placement share a bucket.

**When segments are released** (docs/program.md §3): an experiment holds its segments while it is
RUNNING or PAUSED and for ``cooldown`` after it ends (COMPLETED or KILLED, ``endedAt``). A user's metrics
keep accruing to the ended experiment after its end (late renewals, refunds, trial conversions are counted
from first exposure, API.md §7), and its final analysis is usually run then; a successor that took the
range at once would lay its treatment over those users while they are still being measured. After the
cooldown the buckets are free again: a new experiment's arms are drawn by its own salt, independently of
the old one's, so whatever the old treatment left behind is balanced across the new arms.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Sequence

from offerlab.domain.assignment import BUCKETS, bucket_of, threshold

DEFAULT_PLACEMENT = "default"
LAYER_SALT_PREFIX = "layer:"
# Placement names become Firestore document ids and log fields: a letter or digit first, then letters,
# digits, "_", "-" or "."; at most 64 characters (so never ".", "..", "__x__" or a path).
PLACEMENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
_PLACEMENT = re.compile(PLACEMENT_PATTERN)
DEFAULT_COOLDOWN = timedelta(days=7)

Segment = tuple[int, int]  # [start, end) in layer buckets


def is_placement(value: object) -> bool:
    return isinstance(value, str) and _PLACEMENT.fullmatch(value) is not None


def layer_salt(placement: str) -> str:
    """The salt of the placement's layer hash: public, derived from the name alone (docs/program.md §2)."""
    return f"{LAYER_SALT_PREFIX}{placement}"


def layer_bucket(placement: str, user_id: str) -> int:
    """The user's bucket in the placement's layer, in [0, 10000)."""
    return bucket_of(layer_salt(placement), user_id)


def width_of(traffic_percentage: float) -> int:
    """Buckets an experiment with this traffic share needs: ``round(trafficPercentage * 100)``."""
    return threshold(traffic_percentage)


def in_segments(value: int, segments: Iterable[Segment]) -> bool:
    return any(start <= value < end for start, end in segments)


def segments_width(segments: Iterable[Segment]) -> int:
    return sum(end - start for start, end in segments)


@dataclass(frozen=True)
class Holder:
    """An experiment that holds (or held) segments of a placement, as the allocation needs it."""

    experiment_id: str
    segments: tuple[Segment, ...]
    live: bool                      # RUNNING or PAUSED
    ended_at: datetime | None       # COMPLETED/KILLED time; None while it has not ended

    def holds(self, now: datetime, cooldown: timedelta) -> bool:
        """Live, or ended less than ``cooldown`` ago (module docstring: why a cooldown)."""
        if self.live:
            return True
        return self.ended_at is not None and now < self.ended_at + cooldown

    def released_at(self, cooldown: timedelta) -> datetime | None:
        return None if self.live or self.ended_at is None else self.ended_at + cooldown


def free_segments(held: Iterable[Segment]) -> list[Segment]:
    """The complement of ``held`` in [0, 10000), as sorted disjoint segments."""
    out: list[Segment] = []
    cursor = 0
    for start, end in sorted(held):
        if start > cursor:
            out.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < BUCKETS:
        out.append((cursor, BUCKETS))
    return out


def allocate(width: int, held: Iterable[Segment]) -> tuple[Segment, ...] | None:
    """The lowest free buckets, ``width`` of them, as segments; None when fewer than ``width`` are free.

    Lowest-first keeps the free space in one piece at the top as long as experiments end in the order
    they started; several segments per experiment mean fragmentation never refuses a start that fits."""
    if width <= 0:
        raise ValueError("an experiment needs at least one bucket")
    taken: list[Segment] = []
    need = width
    for start, end in free_segments(held):
        if need == 0:
            break
        take = min(need, end - start)
        taken.append((start, start + take))
        need -= take
    return tuple(taken) if need == 0 else None


@dataclass(frozen=True)
class Capacity:
    """The outcome of an allocation attempt, for the launch checklist's ``placement_capacity`` item."""

    placement: str
    needed: int
    free: int
    segments: tuple[Segment, ...] | None
    holders: tuple[str, ...]            # experiments whose segments are held (live or cooling down)

    @property
    def ok(self) -> bool:
        return self.segments is not None

    def detail(self) -> str:
        pct = lambda buckets: f"{buckets / 100:g}%"  # noqa: E731 - a one-off formatter
        if self.ok:
            return f"Traffic {pct(self.needed)} of placement {self.placement!r} fits ({pct(self.free)} free)."
        held = ", ".join(self.holders) or "none"
        return (f"Placement {self.placement!r} has {pct(self.free)} free, the experiment needs {pct(self.needed)} "
                f"(held by: {held}).")


def plan_capacity(placement: str, traffic_percentage: float, holders: Sequence[Holder], now: datetime,
                  cooldown: timedelta = DEFAULT_COOLDOWN) -> Capacity:
    holding = [h for h in holders if h.holds(now, cooldown)]
    held = [s for h in holding for s in h.segments]
    width = width_of(traffic_percentage)
    free = BUCKETS - segments_width(merge(held))
    return Capacity(placement, width, free, allocate(width, held), tuple(h.experiment_id for h in holding))


def merge(held: Iterable[Segment]) -> list[Segment]:
    """The held buckets merged into disjoint segments (overlaps counted once)."""
    merged: list[list[int]] = []
    for start, end in sorted(held):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def slot_table(slots: Sequence[tuple[Segment, ...]]) -> bytes:
    """A 10,000-entry lookup: entry ``b`` is 1 + the index of the slot holding layer bucket ``b``, 0 when
    none does (at most 255 slots). get_offer's hot path finds the holder of a user in one index.

    Allocation never lets two live experiments share a bucket; a cache that saw an ended experiment as
    still live for a moment could, so a bucket already taken by an earlier slot stays with it (callers
    list the most recently started first)."""
    table = bytearray(BUCKETS)
    if len(slots) > 255:
        raise ValueError("at most 255 experiments hold one placement at a time")
    for index, segments in enumerate(slots):
        for start, end in segments:
            for b in range(max(0, start), min(BUCKETS, end)):
                if not table[b]:
                    table[b] = index + 1
    return bytes(table)
