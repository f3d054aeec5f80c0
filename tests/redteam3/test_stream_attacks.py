"""Attacks on streaming executions: SSE /sandbox/executions/{id}/events, /sessions/{id}/events
and the WebSocket /sandbox/executions/{id}/attach. Finding ids RT3-S<n>; each test says
whether it passed against streaming@2afc22b. Real `coderoom serve` processes (embedded,
executions in process, as root), real HTTP and WebSocket clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from coderoom import migrations
from tests.conftest import make_settings
from tests.support.cluster import Api
from tests.support.live import LIVE_ENV, add_member, call, new_session, person

pytestmark = [
    pytest.mark.server,
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    url = f"sqlite+aiosqlite:///{tmp_path}/coderoom.sqlite3"
    migrations.upgrade(make_settings(database_url=url))
    server = Api("stream", tmp_path, {"DATABASE_URL": url, **LIVE_ENV})
    try:
        yield server
    finally:
        server.stop()


def ws_url(api: Api, execution_id: str) -> str:
    return api.url.replace("http://", "ws://") + f"/sandbox/executions/{execution_id}/attach"


async def sse_events(api: Api, path: str, headers: dict[str, str]) -> list[tuple[str, str]]:
    """(event, data) pairs of a whole SSE stream, parsed as a browser's EventSource does."""
    events: list[tuple[str, str]] = []
    kind, data = "message", list[str]()
    async with (
        asyncio.timeout(120),  # keep-alive pings defeat the read timeout: bound the whole
        httpx.AsyncClient(timeout=60) as http,
        http.stream("GET", f"{api.url}{path}", headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        buffer = ""
        async for text in response.aiter_text():
            buffer += text
            lines = buffer.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            buffer = lines.pop()
            for line in lines:
                if line == "":
                    if data:
                        events.append((kind, "\n".join(data)))
                    kind, data = "message", list[str]()
                elif line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
    return events


async def start_run(api: Api, who: Any, source: str, **extra: Any) -> str:
    async with httpx.AsyncClient(timeout=60) as http:
        r = await http.post(
            f"{api.url}/sandbox/executions",
            json={"language": "python", "source": source, **extra},
            headers=who.headers,
        )
    assert r.status_code in (200, 201, 202), r.text
    return str(r.json()["id"])


# --- RT3-S1 (medium): access is checked once; a removed participant keeps steering ---------
# FAILED on streaming@2afc22b: `writable` is computed at upgrade; after the owner removes an
# editor, the open /attach still accepts stdin (and keeps streaming the run's output).

ECHO = "import sys\nfor line in sys.stdin:\n    print('got', line.strip(), flush=True)\n"


async def test_rt3_s1_a_removed_editor_can_no_longer_type_into_the_run(api: Api) -> None:
    ada = await person(api, "ada")
    sid = await new_session(api, ada, source=ECHO)
    bob = await add_member(api, ada, sid, "editor")
    async with httpx.AsyncClient(timeout=60) as http:
        r = await http.post(
            f"{api.url}/sessions/{sid}/run", json={"interactive": True}, headers=ada.headers
        )
    assert r.status_code in (200, 201, 202), r.text
    eid = r.json()["id"]
    async with websockets.connect(ws_url(api, eid), additional_headers=bob.headers) as ws:
        hello = json.loads(await ws.recv())
        assert hello["writable"] is True
        await call(api, "DELETE", f"/sessions/{sid}/participants/{bob.id}", ada, expect=204)
        await ws.send(json.dumps({"type": "stdin", "data": "after-removal\n"}))
        await ws.send(json.dumps({"type": "eof"}))
        seen = ""
        try:
            async with asyncio.timeout(20):
                async for raw in ws:
                    message = json.loads(raw)
                    if message["type"] == "error":
                        break
                    if message["type"] == "stdout":
                        seen += message["data"]
        except (TimeoutError, websockets.ConnectionClosed):
            pass
    assert "got after-removal" not in seen, "a removed editor typed into the session's run"


# --- RT3-S2 (coverage, passed): program output cannot forge SSE events ------------------------

FORGER = (
    "import sys\n"
    'sys.stdout.write(\'a\\n\\nevent: result\\ndata: {"status":"forged"}\\n\\n\')\n'
    "sys.stdout.write('b\\r\\revent: status\\rdata: x\\r\\r')\n"
    "sys.stdout.write('c\\u2028\\u0085id: 99\\n')\n"
)


async def test_rt3_s2_output_with_sse_framing_is_one_data_line(api: Api) -> None:
    ada = await person(api, "ada")
    eid = await start_run(api, ada, FORGER)
    events = await sse_events(api, f"/sandbox/executions/{eid}/events", ada.headers)
    kinds = [k for k, _ in events]
    assert kinds.count("result") == 1
    assert kinds[-1] == "result"
    assert all(k in {"status", "compile", "stdout", "stderr", "lagged", "result"} for k in kinds)
    result = json.loads(events[-1][1])
    assert result["status"] != "forged"
    for _, data in events:
        json.loads(data)  # every data line is one JSON document


# --- RT3-S3 (coverage, passed): forged Last-Event-ID values --------------------------------


@pytest.mark.parametrize(
    "forged", ["-1", "abc", "99999999999999999999999999-0", "1-2-3", "0-1\r\nX: y", "¹-0"]
)
async def test_rt3_s3_forged_last_event_id_is_a_clean_4xx_or_ignored(api: Api, forged: str) -> None:
    ada = await person(api, "ada")
    eid = await start_run(api, ada, "print('hi')\n")
    async with httpx.AsyncClient(timeout=60) as http:
        try:
            r = await http.get(
                f"{api.url}/sandbox/executions/{eid}/events",
                headers=[
                    *((k.encode(), v.encode()) for k, v in ada.headers.items()),
                    (b"Last-Event-ID", forged.encode()),
                ],
            )
        except httpx.LocalProtocolError:
            return  # the client itself refuses a header with CR/LF
    assert r.status_code in (200, 400, 422), r.text
    if r.status_code == 200:
        assert "event: result" in r.text


# --- RT3-S4 (coverage, passed): watching or steering someone else's run --------------------


async def test_rt3_s4_strangers_and_viewers_cannot_watch_or_steer(api: Api) -> None:
    ada = await person(api, "ada")
    mallory = await person(api, "mallory")
    eid = await start_run(api, ada, "import time\ntime.sleep(3)\n", interactive=True)
    async with httpx.AsyncClient(timeout=60) as http:
        r = await http.get(f"{api.url}/sandbox/executions/{eid}/events", headers=mallory.headers)
    assert r.status_code == 404
    with pytest.raises(websockets.InvalidStatus) as denied:
        await websockets.connect(ws_url(api, eid), additional_headers=mallory.headers)
    assert denied.value.response.status_code == 404
    # A session viewer watches but may not write, signal or cancel.
    sid = await new_session(api, ada, source="import time\ntime.sleep(3)\n")
    viewer = await add_member(api, ada, sid, "viewer")
    async with httpx.AsyncClient(timeout=60) as http:
        r = await http.post(
            f"{api.url}/sessions/{sid}/run", json={"interactive": True}, headers=ada.headers
        )
    run_id = r.json()["id"]
    async with websockets.connect(ws_url(api, run_id), additional_headers=viewer.headers) as ws:
        assert json.loads(await ws.recv())["writable"] is False
        for message in (
            {"type": "stdin", "data": "x"},
            {"type": "signal", "signal": "SIGKILL"},
            {"type": "cancel"},
        ):
            await ws.send(json.dumps(message))
            while (reply := json.loads(await ws.recv()))["type"] != "error":
                pass
            assert reply["code"] == "read_only"
    # The owner may signal, but only the allowed set, by name.
    async with websockets.connect(ws_url(api, run_id), additional_headers=ada.headers) as ws:
        await ws.recv()
        for bad in ("SIGSTOP", "9", "SIGSEGV", -1, None):
            await ws.send(json.dumps({"type": "signal", "signal": bad}))
            while (reply := json.loads(await ws.recv()))["type"] != "error":
                pass
            assert reply["code"] == "invalid_signal"


# --- RT3-S5 (medium): a removed participant keeps watching the session's runs --------------
# FAILED on streaming@2afc22b: /sessions/{id}/events checks access once; after removal the
# stream goes on (up to STREAM_IDLE_SECONDS between events, STREAM_MAX_CONNECTION_SECONDS in
# all) and carries every later run's output.


async def test_rt3_s5_removal_ends_the_session_event_stream(api: Api) -> None:
    ada = await person(api, "ada")
    sid = await new_session(api, ada, source="print('SECRET-' + 'AFTER-REMOVAL')\n")
    bob = await add_member(api, ada, sid, "viewer")
    seen: list[str] = []
    opened = asyncio.Event()

    async def watch() -> None:
        async with (
            httpx.AsyncClient(timeout=30) as http,
            http.stream("GET", f"{api.url}/sessions/{sid}/events", headers=bob.headers) as r,
        ):
            assert r.status_code == 200
            opened.set()
            async for line in r.aiter_lines():
                seen.append(line)
                if "SECRET-AFTER-REMOVAL" in line or '"result"' in line:
                    return

    watcher = asyncio.create_task(watch())
    await asyncio.wait_for(opened.wait(), 20)
    await call(api, "DELETE", f"/sessions/{sid}/participants/{bob.id}", ada, expect=204)
    async with httpx.AsyncClient(timeout=60) as http:
        r = await http.post(f"{api.url}/sessions/{sid}/run?wait=true", json={}, headers=ada.headers)
    assert r.status_code in (200, 201, 202), r.text
    # Nothing coming within 10 s is what a fix does (or it ends the stream).
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(watcher, 10)
    assert not any("SECRET-AFTER-REMOVAL" in line for line in seen), (
        "a removed participant still receives the session's run output"
    )


# --- RT3-S6 (medium): stdin is buffered without a bound in the process that runs the program
# FAILED on streaming@2afc22b if RSS grows: /attach accepts 64 KiB stdin messages with no
# rate or total cap, and StdinWriter.write() calls transport.write() whatever is buffered;
# a program that never reads its stdin makes the API (embedded) or worker hold all of it.


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_rt3_s6_stdin_flood_is_bounded(api: Api) -> None:
    ada = await person(api, "ada")
    eid = await start_run(
        api, ada, "import time\ntime.sleep(9)\n", interactive=True, limits={"wall_time_ms": 10000}
    )
    assert api.process is not None
    pid = api.process.pid
    async with websockets.connect(ws_url(api, eid), additional_headers=ada.headers) as ws:
        await ws.recv()
        while True:  # wait until the program runs (stdin before that is queued too)
            message = json.loads(await ws.recv())
            if message["type"] == "status" and message["data"].get("phase") == "running":
                break
        before = _rss_kb(pid)
        chunk = json.dumps({"type": "stdin", "data": "A" * 60_000})
        for _ in range(2500):  # 150 MB
            await ws.send(chunk)
        await ws.send(json.dumps({"type": "bogus"}))  # answered after every stdin above
        while json.loads(await ws.recv())["type"] != "error":
            pass
        grown = _rss_kb(pid) - before
    assert grown < 64 * 1024, f"the API process grew by {grown // 1024} MiB of unread stdin"


# --- RT3-S7 (coverage): stdin and source of a live run never reach the log ------------------


async def test_rt3_s7_stdin_and_source_are_not_logged(api: Api) -> None:
    ada = await person(api, "ada")
    eid = await start_run(api, ada, "print(input()) # SOURCE-MARK-77\n", interactive=True)
    async with websockets.connect(ws_url(api, eid), additional_headers=ada.headers) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "stdin", "data": "STDIN-MARK-99\n"}))
        await ws.send(json.dumps({"type": "signal", "signal": "SIGTERM; STDIN-MARK-99"}))
        async for raw in ws:
            if json.loads(raw)["type"] == "result":
                break
    text = api.text()
    assert "STDIN-MARK-99" not in text
    assert "SOURCE-MARK-77" not in text


# --- queue mode: two APIs, a worker, PostgreSQL and Redis ----------------------------------


@dataclass
class Queue:
    a: Api
    b: Api
    worker: Any


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[Queue]:
    from tests.support.cluster import RedisServer, Worker
    from tests.support.services import create_postgres_database, drop_postgres_database

    url = create_postgres_database()
    redis = RedisServer(tmp_path)
    env = {"DATABASE_URL": url, "REDIS_URL": redis.url, **LIVE_ENV}
    started: list[Any] = []
    try:
        migrations.upgrade(make_settings(database_url=url))
        started.append(Api("a", tmp_path, env))
        started.append(Api("b", tmp_path, env))
        started.append(Worker("w", tmp_path, env))
        yield Queue(*started)
    finally:
        for proc in started:
            proc.stop()
        redis.stop()
        drop_postgres_database(url)


# RT3-S6 in queue mode: the worker holds the unread stdin (FAILED on streaming@2afc22b if it
# grows); the flood goes through API b, the Redis control stream and the worker.


async def test_rt3_s6q_stdin_flood_through_another_instance_is_bounded(queue: Queue) -> None:
    ada = await person(queue.a, "ada")
    eid = await start_run(
        queue.a,
        ada,
        "import time\ntime.sleep(9)\n",
        interactive=True,
        limits={"wall_time_ms": 10000},
    )
    assert queue.worker.process is not None
    pid = queue.worker.process.pid
    async with websockets.connect(ws_url(queue.b, eid), additional_headers=ada.headers) as ws:
        await ws.recv()
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "status" and message["data"].get("phase") == "running":
                break
        before = _rss_kb(pid)
        chunk = json.dumps({"type": "stdin", "data": "A" * 60_000})
        for _ in range(1500):  # 90 MB
            await ws.send(chunk)
        await ws.send(json.dumps({"type": "bogus"}))
        while json.loads(await ws.recv())["type"] != "error":
            pass
        peak = before
        for _ in range(30):  # the worker drains the control stream behind the API
            peak = max(peak, _rss_kb(pid))
            await asyncio.sleep(0.1)  # sampling memory, not synchronising
    grown = peak - before
    assert grown < 64 * 1024, f"the worker grew by {grown // 1024} MiB of unread stdin"


# Coverage: a run's output reaches a watcher on another instance exactly, once.


async def test_rt3_s8_watching_on_another_instance_sees_the_run_once(queue: Queue) -> None:
    ada = await person(queue.a, "ada")
    eid = await start_run(queue.a, ada, "for i in range(50):\n    print(i)\n")
    events = await sse_events(queue.b, f"/sandbox/executions/{eid}/events", ada.headers)
    out = "".join(json.loads(d)["data"] for k, d in events if k == "stdout")
    assert out == "".join(f"{i}\n" for i in range(50))
    assert [k for k, _ in events].count("result") == 1
