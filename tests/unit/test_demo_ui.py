"""scripts/demo_ui.py: the demo's steps, progress bars, checks and closing summary."""
import io
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from demo_ui import Story, pad, width  # noqa: E402


def story(interactive: bool = False) -> tuple[Story, io.StringIO]:
    out = io.StringIO()
    return Story("the demo", out=out, interactive=interactive), out


def test_a_step_its_detail_and_a_bar_in_a_log_take_one_line_each():
    ui, out = story()
    with ui.step("ask everyone"):
        ui.say("a detail")
        bar = ui.progress("users asked", 3)
        for _ in range(3):
            bar.advance()
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["the demo", "", "▶ ask everyone"]
    assert lines[3] == "   a detail"
    assert lines[4].startswith("   users asked: 3/3 in ") and len(lines) == 5
    assert "\r" not in out.getvalue()
    assert ui.steps[0].title == "ask everyone" and ui.steps[0].error is None


def test_the_next_step_follows_without_a_blank_line():
    ui, out = story()
    with ui.step("ask everyone"):
        ui.say("a detail")
    with ui.step("count the events"):
        pass
    assert out.getvalue().splitlines() == ["the demo", "", "▶ ask everyone", "   a detail", "▶ count the events"]


def test_on_a_terminal_the_bar_redraws_in_place_and_ends_its_line():
    ui, out = story(interactive=True)
    bar = ui.progress("users asked", 2)
    bar.advance()
    bar.advance()
    text = out.getvalue()
    assert text.count("\n") == 2                              # the title, then the finished bar
    assert "\r   [" in text and "100.0% 2/2 users asked" in text


def test_a_bar_closed_early_still_ends_its_line_once():
    ui, out = story()
    bar = ui.progress("events", 10)
    bar.advance(4)
    bar.close()
    bar.close()
    bar.advance(6)
    assert out.getvalue().splitlines()[-1].startswith("   events: 4/10 in ")
    assert out.getvalue().count("events:") == 1


def test_the_summary_aligns_the_checks_and_says_where_to_look_next():
    ui, out = story()
    ui.check("short", True, "1/1")
    ui.check("a much longer check name", True, "ok")
    assert ui.finish([("out/summary.json", "every figure"), ("make serve", "the suite again")]) is True
    text = out.getvalue()
    assert "   ✔ short                     1/1" in text
    assert "   ✔ a much longer check name  ok" in text
    assert "2 checks, passed, in " in text
    assert text.endswith("where to look next\n   out/summary.json  every figure\n   make serve        the suite again\n")


def test_a_failed_check_fails_the_story_and_a_non_fatal_one_does_not():
    ui, out = story()
    ui.check("the interval covers the truth", False, "missed", fatal=False)
    assert ui.passed is True
    ui.check("every event counted", False, "121/122")
    assert ui.finish() is False
    text = out.getvalue()
    assert "   ~ the interval covers the truth" in text and "   ✘ every event counted" in text
    assert "FAILED (1 check failed)" in text


def test_a_step_that_raises_is_marked_and_named_in_the_summary():
    ui, out = story()
    with pytest.raises(RuntimeError):
        with ui.step("the rollout"):
            raise RuntimeError("did not progress past 5%")
    ui.check("hash", True)
    assert ui.finish() is False
    text = out.getvalue()
    assert "   ✘ RuntimeError: did not progress past 5%" in text
    assert "stopped at the step “the rollout”" in text and "a step failed" in text


def test_widths_count_terminal_columns():
    assert width("✔ ok") == 4 and width("表") == 2 and width("e\u0301") == 1
    assert pad("表", 4) == "表  "
