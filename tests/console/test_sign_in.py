"""Signing in to the console with the Auth emulator's demo people (scripts/console_people.py): each sees their
roles (the ID token's `roles` claim) and only the screens their role may use; a wrong password is refused."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.console.conftest import Console

# (email, roles shown, navigation shown, navigation hidden, may create experiments)
PEOPLE = [
    ("pm@company.com", "experimenter", ["Experiments", "Holdouts", "App integration"], ["Approvals", "Audit"], True),
    ("ceo@company.com", "approver", ["Experiments", "Approvals", "Holdouts", "Audit"], [], False),
    ("cfo@company.com", "approver", ["Experiments", "Approvals", "Audit"], [], False),
    ("analyst@company.com", "analyst", ["Experiments", "Holdouts", "Audit"], ["Approvals"], False),
    ("admin@company.com", "admin", ["Experiments", "Approvals", "Holdouts", "Audit"], [], True),
]


def test_a_wrong_password_is_refused_on_the_form(console: Console):
    page = console.open()
    expect(page.get_by_role("heading", name="offerlab console")).to_be_visible()
    expect(page.get_by_label("Demo sign-ins")).to_contain_text("analyst@company.com")
    Console.shot(page, "00-sign-in")
    page.get_by_label("Email").fill("pm@company.com")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong email or password.")
    expect(page.get_by_test_id("signed-in-as")).to_have_count(0)


@pytest.mark.parametrize(("email", "roles", "shown", "hidden", "creates"), PEOPLE, ids=[p[0].split("@")[0] for p in PEOPLE])
def test_each_demo_person_signs_in_and_sees_what_their_role_may_use(console: Console, email, roles, shown, hidden, creates):
    page = console.sign_in(email)
    expect(page.get_by_test_id("roles")).to_have_text(roles)
    nav = page.get_by_role("navigation", name="Main")
    for text in shown:
        expect(nav.get_by_role("link", name=text, exact=True)).to_be_visible()
    for text in hidden:
        expect(nav.get_by_role("link", name=text, exact=True)).to_have_count(0)
    expect(page.get_by_role("heading", name="Experiments")).to_be_visible()
    expect(page.get_by_role("link", name="New experiment")).to_have_count(1 if creates else 0)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_signing_in_works_from_the_keyboard_alone(console: Console):
    page = console.open()
    expect(page.get_by_label("Email")).to_be_visible()
    page.get_by_label("Email").focus()
    page.keyboard.type("analyst@company.com")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type("offerlab-demo")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("roles")).to_have_text("analyst")
    # The first Tab reaches the skip link, which takes the keyboard past the navigation to the content.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
