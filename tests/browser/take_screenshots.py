"""Re-take docs/screenshots/ from a real `coderoom serve` and Chromium (not a test).

    make web && .venv/bin/python -m tests.browser.take_screenshots

Alice and Bob share a room: both type, Bob's cursor and selection show in Alice's editor,
Alice runs a program that reads a line, answers it from the input box and the output
streams in. Each screen is taken in the light and the dark theme where the README shows both.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser.conftest import CHROMIUM, REPO, LiveServer

OUT = REPO / "docs" / "screenshots"
PASSWORD = "a long enough passphrase 42"
PROGRAM = 'name = input("Your name? ")\nprint(f"Hello, {name}!")\n'


def sign_up(page: Page, url: str, name: str) -> None:
    page.goto(f"{url}/signup")
    page.get_by_label("Display name").fill(name)
    page.get_by_label("Email").fill(f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def shoot(browser: Browser, url: str, scheme: str) -> None:
    viewport = {"width": 1280, "height": 760}
    alice_context = browser.new_context(viewport=viewport, color_scheme=scheme)  # type: ignore[arg-type]
    bob_context = browser.new_context(viewport=viewport, color_scheme=scheme)  # type: ignore[arg-type]
    alice, bob = alice_context.new_page(), bob_context.new_page()
    sign_up(alice, url, "Alice")
    for title in ("Interview: two sum", "Pairing on the parser"):
        alice.get_by_label("Title").fill(title)
        alice.get_by_label("Language").select_option("python")
        alice.get_by_role("button", name="Create session").click()
        expect(alice.get_by_role("heading", name=title)).to_be_visible()
        alice.get_by_role("link", name="coderoom").click()
    alice.get_by_label("Title").fill("Class 3: recursion")
    alice.get_by_label("Language").select_option("python")
    alice.get_by_label("Starter file").fill(PROGRAM)
    alice.get_by_role("button", name="Create session").click()
    expect(alice.get_by_role("heading", name="Class 3: recursion")).to_be_visible()
    alice.get_by_role("button", name="Create invite link").click()
    link = alice.get_by_test_id("invite-link").input_value()

    bob.goto(link)
    bob.get_by_label("Display name").fill("Bob")
    bob.get_by_label("Email").fill(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    bob.get_by_label("Password").fill(PASSWORD)
    bob.get_by_role("button", name="Create account").click()
    for page in (alice, bob):
        expect(page.get_by_test_id("connection")).to_have_text("Live")
    expect(alice.get_by_test_id("presence")).to_contain_text("Bob")

    alice.locator(".cm-content").click()
    alice.keyboard.press("Control+End")
    alice.keyboard.type("# Alice: now make it recursive\n")
    bob.locator(".cm-content").click()
    bob.keyboard.press("Control+Home")
    bob.keyboard.type("# Bob: reads one line\n")
    bob.keyboard.press("Shift+End")
    expect(alice.locator(".cm-content")).to_contain_text("# Bob: reads one line")
    expect(alice.locator(".cm-ySelectionInfo")).to_contain_text("Bob")

    alice.get_by_test_id("run").click()
    expect(alice.get_by_test_id("output")).to_contain_text("Your name?")
    alice.get_by_test_id("stdin").fill("Ada")
    alice.get_by_test_id("stdin").press("Enter")
    for page in (alice, bob):
        expect(page.get_by_test_id("output")).to_contain_text("Hello, Ada!")
        expect(page.get_by_test_id("verdict")).to_contain_text("succeeded")
    alice.locator(".cm-line").nth(3).click()  # Alice's own caret, at the end of her line
    alice.keyboard.press("End")
    alice.locator(".cm-ySelectionCaret").first.hover()  # shows Bob's name tag
    alice.wait_for_function(
        "() => getComputedStyle(document.querySelector('.cm-ySelectionInfo')).opacity === '1'"
    )
    alice.screenshot(path=str(OUT / f"room-{scheme}.png"), animations="disabled")

    alice.get_by_role("link", name="coderoom").click()
    expect(alice.get_by_role("link", name="Class 3: recursion")).to_be_visible()
    alice.screenshot(path=str(OUT / f"sessions-{scheme}.png"))

    if scheme == "light":
        guest = browser.new_context(viewport={"width": 1280, "height": 760}).new_page()
        guest.goto(f"{url}/signup")
        expect(guest.get_by_role("button", name="Create account")).to_be_visible()
        guest.screenshot(path=str(OUT / "signup.png"))
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        invite = phone.new_page()
        invite.goto(link)
        expect(invite.get_by_text("You have been invited")).to_be_visible()
        invite.screenshot(path=str(OUT / "join-phone.png"))
        guest.context.close()
        phone.close()
    alice_context.close()
    bob_context.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = LiveServer(Path(tmp), RATE_LIMIT_ENABLED="false")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
                )
                for scheme in ("light", "dark"):
                    shoot(browser, server.url, scheme)
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
