"""Monitoring: a real 500 reaches a Sentry endpoint with its context and without secrets."""

from __future__ import annotations

import gzip
import json
import signal
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from coderoom.infra.sentry import FILTERED, scrub, scrub_query
from tests.support.server import Server, wait_until

PASSWORD = "hunter2-body-secret"
QUERY_SECRET = "query-secret-456"
JWT_SECRET = "sentry-test-jwt-secret-which-is-long-enough-0123456789"


class Ingest:
    """Plays Sentry's ingest endpoint on 127.0.0.1 and keeps every envelope, decompressed."""

    def __init__(self) -> None:
        self.envelopes: list[bytes] = []
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    raw = gzip.decompress(raw)
                elif encoding == "deflate":
                    raw = zlib.decompress(raw)
                elif encoding == "br":
                    import brotli

                    raw = brotli.decompress(raw)
                ingest.envelopes.append(raw)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.dsn = f"http://publickey@127.0.0.1:{self.server.server_address[1]}/1"

    def events(self) -> list[dict[str, Any]]:
        found = []
        for envelope in self.envelopes:
            lines = envelope.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if json.loads(header).get("type") == "event":
                    found.append(json.loads(payload))
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ingest() -> Iterator[Ingest]:
    server = Ingest()
    yield server
    server.close()


@pytest.mark.server
def test_a_500_is_reported_with_context_and_no_secrets(
    tmp_path: Path, sqlite_url: str, ingest: Ingest
) -> None:
    server = Server(
        tmp_path,
        sqlite_url,
        SENTRY_DSN=ingest.dsn,
        JWT_SECRET=JWT_SECRET,
        RATE_LIMIT_AUTH="100/minute",
    )
    try:
        wait_until(server.ready)
        base = f"{server.url}/api/v1"
        tokens = httpx.post(
            f"{base}/auth/register",
            json={"email": "mon@example.com", "password": "monitored-password-1"},
        ).json()
        access = tokens["access_token"]
        # Client errors first: they must send nothing.
        assert httpx.get(f"{base}/nope").status_code == 404
        assert httpx.post(f"{base}/auth/register", json={"email": "x"}).status_code == 422
        boom = httpx.post(
            f"{base}/_test/boom?api_token={QUERY_SECRET}&page=2",
            json={"password": PASSWORD, "note": "hello"},
            headers={
                "Authorization": f"Bearer {access}",
                "X-Correlation-ID": "sentry-corr-1",
                "Cookie": "session=cookie-secret-789",
            },
        )
        assert boom.status_code == 500
        server.process.send_signal(signal.SIGTERM)  # graceful shutdown flushes the client
        assert server.process.wait(timeout=60) == 0
    finally:
        server.stop()
    events = ingest.events()
    assert len(events) == 1, [e.get("message") or e.get("logentry") for e in events]
    event = events[0]
    assert event["tags"]["correlation_id"] == "sentry-corr-1"
    assert event["user"] == {"id": tokens["user"]["id"]}
    assert event["request"]["url"].endswith("/api/v1/_test/boom")
    assert event["request"]["method"] == "POST"
    assert "page=2" in event["request"]["query_string"]
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["environment"] == "test"
    assert event["release"].startswith("coderoom@")
    everything = b"".join(ingest.envelopes)
    for secret in (
        PASSWORD,
        QUERY_SECRET,
        access,
        tokens["refresh_token"],
        "cookie-secret-789",
        JWT_SECRET,
        "monitored-password-1",
    ):
        assert secret.encode() not in everything, secret


def test_scrub_filters_secret_names_urls_and_tokens() -> None:
    event = {
        "extra": {
            "DATABASE_URL": "postgresql://app:pw@db/app",
            "config": {"redis": "redis://:s3cret@cache:6379/0", "X-Api-Key": "k", "page": 1},
            "source": "print('code')",
            "note": "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlX2hlcmU in text",
        },
        "request": {"headers": [["Authorization", "Bearer x"], ["Accept", "*/*"]]},
    }
    cleaned = scrub(event)
    assert cleaned["extra"]["DATABASE_URL"] == FILTERED
    assert cleaned["extra"]["config"]["redis"] == f"redis://{FILTERED}@cache:6379/0"
    assert cleaned["extra"]["config"]["X-Api-Key"] == FILTERED
    assert cleaned["extra"]["config"]["page"] == 1
    assert cleaned["extra"]["source"] == FILTERED
    assert "eyJ" not in cleaned["extra"]["note"]
    assert cleaned["request"]["headers"] == [["Authorization", FILTERED], ["Accept", "*/*"]]
    assert (
        scrub_query("password=a&q=b&refresh_token=c")
        == "password=%5BFiltered%5D&q=b&refresh_token=%5BFiltered%5D"
    )


def test_sentry_stays_off_without_a_dsn() -> None:
    import sentry_sdk

    from coderoom.infra.sentry import init_sentry
    from tests.conftest import make_settings

    assert init_sentry(make_settings()) is False
    assert not sentry_sdk.get_client().is_active()
