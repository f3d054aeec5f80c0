"""The web app end to end, as people use it: two browsers, one session."""

from __future__ import annotations

import gzip
import re
import time
import uuid

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.browser.conftest import DIST, LiveServer

pytestmark = pytest.mark.browser

PASSWORD = "a long enough passphrase 42"


def sign_up(page: Page, server: LiveServer, name: str, path: str = "/signup") -> str:
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    page.goto(server.url + path)
    if path == "/signup":
        page.get_by_label("Display name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return email


def new_context(browser: Browser) -> BrowserContext:
    return browser.new_context(viewport={"width": 1280, "height": 800})


def create_session(page: Page, title: str) -> str:
    expect(page.get_by_role("heading", name="Your sessions")).to_be_visible()
    page.get_by_label("Title").fill(title)
    page.get_by_label("Language").select_option("python")
    page.get_by_label("Starter file").fill('print("hello from " + input())\n')
    page.get_by_role("button", name="Create session").click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    match = re.search(r"/s/([0-9a-f-]{36})$", page.url)
    assert match
    return match.group(1)


def test_sign_up_create_list_rename_and_reload_keeps_sign_in(
    browser: Browser, server: LiveServer
) -> None:
    context = new_context(browser)
    page = context.new_page()
    sign_up(page, server, "Alice")
    create_session(page, "Quicksort pairing")
    page.get_by_role("link", name="coderoom").click()
    expect(page.get_by_role("link", name="Quicksort pairing")).to_be_visible()

    # Nothing of the login is in script-readable storage; the refresh token is httpOnly.
    assert page.evaluate("() => localStorage.length + sessionStorage.length") == 0
    assert "coderoom_refresh" not in page.evaluate("() => document.cookie")
    [cookie] = [c for c in context.cookies() if c["name"] == "coderoom_refresh"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/api/v1/auth"

    page.reload()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("link", name="Quicksort pairing")).to_be_visible()

    page.get_by_role("button", name="Rename Quicksort pairing").click()
    page.get_by_label("New title").fill("Mergesort pairing")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("link", name="Mergesort pairing")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    context.close()


def test_unknown_and_used_up_invites_are_explained(browser: Browser, server: LiveServer) -> None:
    context = new_context(browser)
    page = context.new_page()
    sign_up(page, server, "Carol")
    page.goto(f"{server.url}/join/not-a-real-invite")
    expect(page.get_by_role("heading", name="This invite link does not work")).to_be_visible()
    page.get_by_role("link", name="Go to your sessions").click()

    session_id = create_session(page, "One-use invite")
    page.get_by_label("Maximum uses").fill("1")
    page.get_by_role("button", name="Create invite link").click()
    link = page.get_by_test_id("invite-link").input_value()
    page.goto(link)  # the owner joining again changes nothing and spends no use
    expect(page).to_have_url(re.compile(f"/s/{session_id}$"))

    for name in ("Dan", "Erin"):
        other = new_context(browser)
        guest = other.new_page()
        guest.goto(link)
        expect(guest.get_by_text("You have been invited")).to_be_visible()
        guest.get_by_label("Display name").fill(name)
        guest.get_by_label("Email").fill(f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com")
        guest.get_by_label("Password").fill(PASSWORD)
        guest.get_by_role("button", name="Create account").click()
        if name == "Dan":
            expect(guest).to_have_url(re.compile(f"/s/{session_id}$"))
        else:
            expect(guest.get_by_role("heading", name="This invite has ended")).to_be_visible()
        other.close()
    context.close()


def test_a_429_shows_a_countdown_from_retry_after(
    browser: Browser, built_app: object, tmp_path_factory: pytest.TempPathFactory
) -> None:
    limited = LiveServer(tmp_path_factory.mktemp("limited"), RATE_LIMIT_AUTH="3/minute")
    try:
        context = new_context(browser)
        page = context.new_page()
        page.goto(f"{limited.url}/signin")
        for _ in range(4):
            page.get_by_label("Email").fill("nobody@example.com")
            page.get_by_label("Password").fill("wrong password")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("alert").first).to_be_visible()
        banner = page.get_by_test_id("rate-limit")
        expect(banner).to_contain_text("try again in")
        first = int(banner.locator("strong").inner_text())
        assert 0 < first <= 60
        expect(banner.locator("strong")).not_to_have_text(str(first), timeout=3000)
        context.close()
    finally:
        limited.stop()


def test_first_load_javascript_is_under_300_kb_compressed(
    browser: Browser, server: LiveServer
) -> None:
    context = new_context(browser)
    page = context.new_page()
    scripts: list[str] = []
    page.on(
        "response",
        lambda r: scripts.append(r.url) if r.request.resource_type == "script" else None,
    )
    sign_up(page, server, "Frank")
    create_session(page, "Size check")
    page.reload()
    expect(page.get_by_role("heading", name="Size check")).to_be_visible()
    # Everything the room loads: the editor, then its language's mode (lazy), which wraps
    # the starter's string literal in a highlighted span.
    expect(page.locator(".cm-line span").first).to_be_attached()
    total = 0
    for url in set(scripts):
        response = httpx.get(url, headers={"Accept-Encoding": "gzip"})
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        total += len(gzip.compress(response.content, compresslevel=9))
    print(f"\nfirst-load JS of the room: {len(set(scripts))} files, {total / 1024:.1f} KiB gzip")
    assert total < 300 * 1024
    assert DIST.is_dir()
    context.close()


def test_two_people_code_together_run_answer_stdin_and_lose_the_editor_role(
    browser: Browser, server: LiveServer
) -> None:
    alice_context, bob_context = new_context(browser), new_context(browser)
    alice, bob = alice_context.new_page(), bob_context.new_page()
    sign_up(alice, server, "Alice")
    session_id = create_session(alice, "Pairing")
    alice.get_by_label("Role", exact=True).select_option("editor")
    alice.get_by_role("button", name="Create invite link").click()
    link = alice.get_by_test_id("invite-link").input_value()

    bob.goto(link)
    bob.get_by_label("Display name").fill("Bob")
    bob.get_by_label("Email").fill(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    bob.get_by_label("Password").fill(PASSWORD)
    bob.get_by_role("button", name="Create account").click()
    expect(bob).to_have_url(re.compile(f"/s/{session_id}$"))

    for page in (alice, bob):
        expect(page.get_by_test_id("connection")).to_have_text("Live")
        expect(page.locator(".cm-content")).to_contain_text("hello from")
    expect(alice.get_by_test_id("presence")).to_contain_text("Bob")
    expect(bob.get_by_test_id("presence")).to_contain_text("Alice")

    # Both type at once, at different places of the same file.
    alice.locator(".cm-content").click()
    alice.keyboard.press("Control+Home")
    bob.locator(".cm-content").click()
    bob.keyboard.press("Control+End")
    alice.keyboard.type("# alice was here\n")
    bob.keyboard.type("print('bob too')\n")
    for page in (alice, bob):
        expect(page.locator(".cm-content")).to_contain_text("# alice was here")
        expect(page.locator(".cm-content")).to_contain_text("print('bob too')")
    # Each sees the other's cursor, labelled with the name.
    expect(alice.locator(".cm-ySelectionInfo")).to_contain_text("Bob")
    expect(bob.locator(".cm-ySelectionInfo")).to_contain_text("Alice")

    # Bob runs; the program waits for a line, answered from the input box.
    started = time.perf_counter()
    bob.get_by_test_id("run").click()
    bob_input = bob.get_by_test_id("stdin")
    expect(bob_input).to_be_enabled()
    bob_input.fill("Bob's keyboard")
    bob_input.press("Enter")
    for page in (bob, alice):
        expect(page.get_by_test_id("output")).to_contain_text("hello from Bob's keyboard")
        expect(page.get_by_test_id("output")).to_contain_text("bob too")
        expect(page.get_by_test_id("verdict")).to_contain_text("succeeded")
    elapsed = (time.perf_counter() - started) * 1000
    # Beside it, the run's own wall time as the server measured it (the verdict line).
    print(f"\nclick Run → output in both panes: {elapsed:.0f} ms; run itself: ", end="")
    print(bob.get_by_test_id("verdict").inner_text())

    # Alice makes Bob a viewer: his editor turns read-only while still following edits.
    alice.get_by_test_id("role-Bob").select_option("viewer")
    expect(bob.get_by_test_id("read-only")).to_be_visible(timeout=15000)
    expect(bob.get_by_test_id("editor")).to_have_attribute("data-readonly", "true")
    expect(bob.get_by_test_id("run")).to_be_disabled()
    alice.locator(".cm-content").click()
    alice.keyboard.type("# still live\n")
    expect(bob.locator(".cm-content")).to_contain_text("# still live")

    # A reload keeps both signed in and in the room.
    for page in (alice, bob):
        page.reload()
        expect(page.get_by_test_id("connection")).to_have_text("Live")
        expect(page.locator(".cm-content")).to_contain_text("# alice was here")
    alice_context.close()
    bob_context.close()


def test_input_typed_while_the_attach_socket_is_still_opening_reaches_the_program(
    browser: Browser, server: LiveServer
) -> None:
    context = new_context(browser)
    page = context.new_page()
    sign_up(page, server, "Grace")
    create_session(page, "Early input")
    expect(page.get_by_test_id("connection")).to_have_text("Live")
    # Hold the ticket for the attach socket until the line has been typed and sent.
    held: list[Route] = []
    page.route("**/api/v1/auth/ws-tickets", lambda route: held.append(route))
    page.get_by_test_id("run").click()
    stdin = page.get_by_test_id("stdin")
    expect(stdin).to_be_enabled()
    stdin.fill("an early line")
    stdin.press("Enter")
    expect(stdin).to_have_value("")
    assert len(held) == 1
    held[0].continue_()
    page.unroute("**/api/v1/auth/ws-tickets")
    expect(page.get_by_test_id("output")).to_contain_text("hello from an early line")
    expect(page.get_by_test_id("verdict")).to_contain_text("succeeded")
    context.close()
