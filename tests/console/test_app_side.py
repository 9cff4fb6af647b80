"""The app's side: the console's integration page calls get_offer with the JS SDK as the signed-in user and
shows the answer, the same one the Python client gets for that user's token."""
from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.console.conftest import Console


def test_the_integration_page_shows_get_offer_for_the_signed_in_user(console: Console, clients):
    page = console.sign_in("pm@company.com")
    page.get_by_role("link", name="App integration").click()
    expect(page.get_by_label("JavaScript snippet")).to_contain_text('httpsCallable(getFunctions(app, "us-central1"), "get_offer")')
    page.get_by_role("button", name="get_offer for pm@company.com").click()
    shown = json.loads(page.get_by_test_id("offer-answer").inner_text())
    expected = clients.as_("pm-uid", "pm@company.com", ("experimenter",)).get_offer()
    assert shown == expected, (shown, expected)
    assert shown["userId"] == "pm-uid"  # the Auth emulator account's uid (scripts/console_people.py)
    Console.shot(page, "10-app-integration")
