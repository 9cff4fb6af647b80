"""The demo's narration: steps, progress bars, checks and the closing summary (scripts/demo.py).

Every step of the demo follows one pattern, so a new step (a programme of experiments, a ledger check,
regions) reads like the others:

    ui = Story("offerlab demo")
    with ui.step("a 10% holdout cohort, frozen (experimenter)"):      # ▶ the step's title
        cohort = ...
        ui.say(f"cohort {cohort['cohortId']} {cohort['status']}")      #    one line of detail
        bar = ui.progress("get_offer at 5 %", total=37)                  # one bar per long step
        for ...: bar.advance()
        ui.check("holdout share within 9–11 %", ok, "9.99 % of 20,000")  # a row of the closing table
    ui.finish(next_steps=[("out/summary.json", "every figure of this run"), ...])

``check(..., fatal=False)`` reports a check without failing the run (a 95 % interval misses the truth in
1 run of 20 by design). A step that raises is reported (``✘``) and ends the story: ``finish`` still
prints the table, naming the step that failed. Only the standard library: the demo runs in the venv.
"""
from __future__ import annotations

import sys
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Iterator

INDENT = "   "


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal (East Asian wide characters count 2, combining marks 0)."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    fatal: bool = True


@dataclass
class StepRecord:
    title: str
    seconds: float = 0.0
    error: str | None = None


class Progress:
    """One bar for a long step. On a terminal it redraws in place (at most 10 times a second); in a log or a
    pipe it prints one line when done, so a captured run stays short."""

    def __init__(self, story: "Story", label: str, total: int, bar_width: int = 30) -> None:
        self.story, self.label, self.total, self.bar_width = story, label, max(total, 1), bar_width
        self.done = 0
        self._drawn_at = 0.0
        self._closed = False
        self._started = time.monotonic()
        self._draw(force=True)

    def advance(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        self._draw(force=self.done >= self.total)

    def close(self) -> None:
        """End the bar where it is (a step that stops early): the line is finished either way."""
        if not self._closed:
            self._finish()

    def _line(self) -> str:
        filled = int(self.bar_width * self.done / self.total)
        return (f"{INDENT}[{'#' * filled}{'.' * (self.bar_width - filled)}] {100 * self.done / self.total:5.1f}% "
                f"{self.done:,}/{self.total:,} {self.label}")

    def _draw(self, force: bool = False) -> None:
        if self._closed:
            return
        if self.story.interactive:
            now = time.monotonic()
            if force or now - self._drawn_at >= 0.1:
                self._drawn_at = now
                self.story.write(f"\r{self._line()}")
        if self.done >= self.total:
            self._finish()

    def _finish(self) -> None:
        self._closed = True
        seconds = time.monotonic() - self._started
        if self.story.interactive:
            self.story.write(f"\r{self._line()} ({seconds:.0f} s)\n")
        else:
            self.story.write(f"{INDENT}{self.label}: {self.done:,}/{self.total:,} in {seconds:.0f} s\n")


@dataclass
class Story:
    title: str
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    interactive: bool | None = None          # None: redraw bars only when ``out`` is a terminal
    checks: list[Check] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.interactive is None:
            self.interactive = bool(getattr(self.out, "isatty", lambda: False)())
        self.write(f"{self.title}\n")

    # --- narration ----------------------------------------------------------------------------------------

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def say(self, text: str) -> None:
        """A line of detail under the current step."""
        self.write(f"{INDENT}{text}\n")

    @contextmanager
    def step(self, title: str) -> Iterator[StepRecord]:
        """``▶ title``; times the step; a step that raises is marked ✘ and the error re-raised."""
        record = StepRecord(title)
        self.steps.append(record)
        lead = "\n" if len(self.steps) == 1 else ""  # a blank line under the title; the ▶ marks the others
        self.write(f"{lead}▶ {title}\n")
        start = time.monotonic()
        try:
            yield record
        except BaseException as err:
            record.error = f"{type(err).__name__}: {err}"[:300]
            self.write(f"{INDENT}✘ {record.error}\n")
            raise
        finally:
            record.seconds = round(time.monotonic() - start, 1)

    def progress(self, label: str, total: int) -> Progress:
        return Progress(self, label, total)

    def check(self, name: str, ok: bool, detail: str = "", fatal: bool = True) -> bool:
        """Record a check for the closing table; returns ``ok``."""
        self.checks.append(Check(name, bool(ok), detail, fatal))
        return bool(ok)

    # --- the end ------------------------------------------------------------------------------------------

    @property
    def failed_step(self) -> StepRecord | None:
        return next((s for s in self.steps if s.error), None)

    @property
    def passed(self) -> bool:
        """Every fatal check held and no step failed."""
        return self.failed_step is None and all(c.ok for c in self.checks if c.fatal)

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 1)

    def finish(self, next_steps: list[tuple[str, str]] = (), notes: list[str] = ()) -> bool:
        """The table of checks (✔/✘, detail), the verdict, then where to look next. Returns ``passed``."""
        self.write("\n▶ summary\n")
        name_width = max([width(c.name) for c in self.checks] + [10])
        for c in self.checks:
            mark = "✔" if c.ok else ("✘" if c.fatal else "~")
            self.say(f"{mark} {pad(c.name, name_width)}  {c.detail}".rstrip())
        failed = self.failed_step
        if failed is not None:
            self.say(f"✘ stopped at the step “{failed.title}”: {failed.error}")
        for note in notes:
            self.say(note)
        fatal_failures = sum(1 for c in self.checks if c.fatal and not c.ok)
        verdict = ("passed" if self.passed else
                   f"FAILED ({fatal_failures} check{'s' if fatal_failures != 1 else ''} failed"
                   f"{', a step failed' if failed else ''})")
        self.say(f"{len(self.checks)} checks, {verdict}, in {self.elapsed():.0f} s")
        if next_steps:
            self.write("\nwhere to look next\n")
            what_width = max(width(w) for w, _ in next_steps)
            for what, why in next_steps:
                self.say(f"{pad(what, what_width)}  {why}")
        return self.passed
