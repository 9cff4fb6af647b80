"""The console's browser tests: Debian's Chromium driven by Playwright, against the console served by the
Hosting emulator of the running suite (`make test` starts it; OFFERLAB_CONSOLE_URL is its address).

Playwright's own browser download cannot run here, so the Python `playwright` package drives the system
Chromium (`executable_path`), with the flags that work offline (../shared/notes/emulators.md). Each person
gets a fresh browser context (its own storage, so its own Firebase sign-in), like a separate laptop.
Screenshots of every screen go to out/console/.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "out" / "console"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
PASSWORD = "offerlab-demo"  # scripts/console_people.py
VIEWPORT = {"width": 1366, "height": 860}  # a laptop screen

expect.set_options(timeout=30_000)  # a callable on the emulator can take seconds when its worker is cold


@pytest.fixture(scope="session")
def console_url() -> str:
    url = os.environ.get("OFFERLAB_CONSOLE_URL")
    if not url:
        pytest.fail("OFFERLAB_CONSOLE_URL is not set: run the tests through `make test` (scripts/with-emulators)")
    return url.rstrip("/")


@pytest.fixture(scope="session")
def browser() -> Browser:
    with sync_playwright() as pw:
        # Playwright gives each launch a fresh, temporary user-data-dir.
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


class Console:
    """Opens the console as a person; `shot` writes a full-page screenshot to out/console/."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.browser, self.url = browser, url
        self.contexts = []
        SHOTS.mkdir(parents=True, exist_ok=True)

    def open(self) -> Page:
        context = self.browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        self.contexts.append(context)
        page = context.new_page()
        page.goto(self.url)
        return page

    def sign_in(self, email: str, password: str = PASSWORD) -> Page:
        page = self.open()
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("signed-in-as")).to_have_text(email)
        return page

    @staticmethod
    def go(page: Page, route: str) -> None:
        page.evaluate("route => { location.hash = route; }", route)

    @staticmethod
    def shot(page: Page, name: str) -> Path:
        path = SHOTS / f"{name}.png"
        page.wait_for_load_state("networkidle")
        page.evaluate("window.scrollTo(0, 0)")  # a full-page shot of a scrolled page paints the sticky header mid-page
        page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def console(browser: Browser, console_url: str) -> Console:
    c = Console(browser, console_url)
    yield c
    c.close()


def experiment_id_from(page: Page) -> str:
    match = re.search(r"#/experiments/([^/]+)$", page.url)
    assert match, f"not on an experiment page: {page.url}"
    return match.group(1)
