"""Log lines: no frame locals, bounded size, scrubbed like Sentry events."""

from __future__ import annotations

import json
import logging
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coderoom.infra.logging import MAX_LINE_BYTES, final_processors
from tests.support.server import Server, wait_until

FAKE_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhYmMifQ.c2lnbmF0dXJlLXZhbHVl"


def _render(fmt: str, **event: Any) -> str:
    line: Any = {"event": "x", **event}
    for processor in final_processors(fmt):  # type: ignore[arg-type]
        line = processor(logging.getLogger("t"), "error", line)
    assert isinstance(line, str)
    return line


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_huge_value_is_cut_to_the_line_limit(fmt: str) -> None:
    line = _render(fmt, detail="x" * 1_000_000, status=503)
    assert len(line.encode()) <= MAX_LINE_BYTES
    assert "503" in line
    assert "chars cut" in line


def test_a_deep_traceback_keeps_its_ends_within_the_limit() -> None:
    def recurse(depth: int) -> None:
        if depth == 0:
            raise RuntimeError("the bottom " + "y" * 5000)
        recurse(depth - 1)

    try:
        recurse(200)
    except RuntimeError as exc:
        line = _render("json", exc_info=exc)
    assert len(line.encode()) <= MAX_LINE_BYTES
    body = json.loads(line)
    frames = body["exception"][0]["frames"]
    assert frames[0]["name"] == "test_a_deep_traceback_keeps_its_ends_within_the_limit"
    assert any("the bottom" in str(part) for part in body["exception"][0].values())


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_secrets_are_scrubbed_like_sentry_events(fmt: str) -> None:
    line = _render(
        fmt,
        authorization=f"Bearer {FAKE_JWT}",
        source="print('my program')",
        url="postgresql://app:hunter2@db:5432/coderoom",
        note=f"token was {FAKE_JWT}",
    )
    for secret in (FAKE_JWT, "my program", "hunter2"):
        assert secret not in line


@pytest.fixture
def server(tmp_path: Path, sqlite_url: str) -> Iterator[Server]:
    running = Server(tmp_path, sqlite_url)
    try:
        wait_until(running.ready)
        yield running
    finally:
        running.stop()


@pytest.mark.server
def test_an_unhandled_error_logs_no_locals_no_token_no_source(server: Server) -> None:
    email = f"logs-{uuid.uuid4().hex[:8]}@example.com"
    token = httpx.post(
        f"{server.url}/api/v1/auth/register",
        json={"email": email, "password": "log-test-password-1"},
    ).json()["access_token"]
    secret_source = f"print('do-not-log-{uuid.uuid4().hex}')"
    response = httpx.post(
        f"{server.url}/api/v1/_test/boom",
        json={"source": secret_source, "padding": "p" * 200_000},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 500
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=60)
    text = server.log.read_text()
    lines = text.splitlines()
    errors = [json.loads(line) for line in lines if '"request.unhandled_exception"' in line]
    assert len(errors) == 1
    assert errors[0]["exception"][0]["exc_type"] == "RuntimeError"
    assert all("locals" not in frame for frame in errors[0]["exception"][0]["frames"])
    assert max(len(line.encode()) for line in lines) <= MAX_LINE_BYTES
    assert token not in text
    assert secret_source not in text
