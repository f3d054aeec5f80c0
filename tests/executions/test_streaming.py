"""Live executions over real servers: SSE, the /attach WebSocket, session streams.

Each scenario runs against two deployments: `embedded` (one API process running the code,
no Redis) and `worker` (an API process and a `coderoom worker` process over Redis, so every
event and every keystroke crosses processes). Waits are for events the program caused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from coderoom import migrations
from tests.conftest import make_settings
from tests.support.cluster import Api, Proc, RedisServer, Worker
from tests.support.services import create_postgres_database, drop_postgres_database
from tests.support.sse import Sse, collect, sse_events, text_of

pytestmark = pytest.mark.server

COMMON_ENV = {
    "RATE_LIMIT_API": "10000/minute",
    "RATE_LIMIT_AUTH": "10000/minute",
    "RATE_LIMIT_EXECUTION": "10000/minute",
    "ARGON2_MEMORY_KIB": "1024",
    "ARGON2_TIME_COST": "1",
    "EXECUTION_MAX_ACTIVE_PER_USER": "50",
    "STREAM_MAX_ENTRIES": "64",  # small, so the slow-reader and late-replay cases trim
    "STREAM_MAX_CONNECTIONS_PER_USER": "3",
    "WORKER_HEARTBEAT_SECONDS": "2",
    "WORKER_SWEEP_SECONDS": "1",
    "WORKER_CONCURRENCY": "4",
    "EXECUTION_CONCURRENCY": "4",
}


@pytest.fixture(scope="module", params=["embedded", "worker"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp(request.param)
    url = create_postgres_database()
    procs: list[Proc] = []
    redis: RedisServer | None = None
    try:
        migrations.upgrade(make_settings(database_url=url))
        env = {**COMMON_ENV, "DATABASE_URL": url}
        if request.param == "worker":
            redis = RedisServer(tmp)
            env["REDIS_URL"] = redis.url
            procs.append(Worker("worker", tmp, env))
        server = Api("api", tmp, env)
        procs.append(server)
        yield server
    finally:
        for proc in procs:
            proc.stop()
        if redis is not None:
            redis.stop()
        drop_postgres_database(url)


@pytest.fixture
async def http(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
        yield client


async def sign_up(http: httpx.AsyncClient, name: str = "user") -> dict[str, str]:
    response = await http.post(
        "/auth/register",
        json={"email": f"{name}-{uuid.uuid4().hex[:8]}@example.com", "password": "live-test-pass"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return {"Authorization": f"Bearer {body['access_token']}", "X-User-Id": body["user"]["id"]}


async def run(
    http: httpx.AsyncClient, headers: dict[str, str], source: str, **extra: Any
) -> dict[str, Any]:
    body = {"language": "python", "source": source, **extra}
    response = await http.post("/sandbox/executions", json=body, headers=headers)
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


def events_url(eid: str) -> str:
    return f"/sandbox/executions/{eid}/events"


def ws_url(api: Api, eid: str) -> str:
    return api.url.replace("http://", "ws://") + f"/sandbox/executions/{eid}/attach"


async def attach(api: Api, eid: str, headers: dict[str, str]) -> ClientConnection:
    return await connect(
        ws_url(api, eid), additional_headers={"Authorization": headers["Authorization"]}
    )


async def until_text(ws: ClientConnection, expected: str, seen: list[dict[str, Any]]) -> None:
    """Read messages until the run's stdout so far contains `expected`."""
    async with asyncio.timeout(60):
        while expected not in "".join(m["data"] for m in seen if m["type"] == "stdout"):
            seen.append(json.loads(await ws.recv()))


async def until_result(ws: ClientConnection, seen: list[dict[str, Any]]) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while not seen or seen[-1]["type"] != "result":
            seen.append(json.loads(await ws.recv()))
    result: dict[str, Any] = seen[-1]["data"]
    return result


def stdout_of(seen: list[dict[str, Any]]) -> str:
    return "".join(m["data"] for m in seen if m["type"] == "stdout")


LINES = "import sys\nfor i in range(5):\n    print(f'line {i}', flush=True)\nprint('oops', file=sys.stderr)\n"
INPUT_LOOP = (
    "while True:\n"
    "    try:\n"
    "        name = input('name? ')\n"
    "    except EOFError:\n"
    "        print('bye'); break\n"
    "    print(f'hello {name}', flush=True)\n"
)


async def test_sse_gives_status_output_and_the_result_in_order(http: httpx.AsyncClient) -> None:
    user = await sign_up(http)
    eid = (await run(http, user, LINES))["id"]
    events = await collect(http, events_url(eid), user)
    kinds = [e.event for e in events]
    assert kinds[-1] == "result"
    statuses = [e.data["status"] for e in events if e.event == "status"]
    assert statuses[-1] == "succeeded"
    assert "running" in statuses
    assert text_of(events) == "".join(f"line {i}\n" for i in range(5))
    assert text_of(events, "stderr") == "oops\n"
    stored = (await http.get(f"/sandbox/executions/{eid}", headers=user)).json()
    assert events[-1].data == stored  # the result event is the body of GET
    ids = [e.id for e in events]
    assert None not in ids
    assert len(set(ids)) == len(ids)


async def test_a_late_subscriber_gets_the_whole_run(http: httpx.AsyncClient) -> None:
    user = await sign_up(http)
    done = (
        await http.post(
            "/sandbox/executions?wait=true",
            json={"language": "python", "source": LINES},
            headers=user,
        )
    ).json()
    assert done["status"] == "succeeded"
    events = await collect(http, events_url(done["id"]), user)
    assert text_of(events) == done["stdout"]
    assert text_of(events, "stderr") == done["stderr"]
    assert events[-1].event == "result"
    assert events[-1].data == done


async def test_reconnecting_with_last_event_id_neither_repeats_nor_skips(
    http: httpx.AsyncClient,
) -> None:
    user = await sign_up(http)
    eid = (await run(http, user, LINES))["id"]
    whole = await collect(http, events_url(eid), user)
    for cut in range(1, len(whole)):
        rest = await collect(http, events_url(eid), user, last_event_id=whole[cut - 1].id)
        assert rest == whole[cut:]


async def test_a_last_event_id_that_is_no_id_of_ours_replays_from_the_start(
    http: httpx.AsyncClient,
) -> None:
    user = await sign_up(http)
    eid = (await run(http, user, "print(1)"))["id"]
    whole = await collect(http, events_url(eid), user)
    assert await collect(http, events_url(eid), user, last_event_id="yesterday") == whole


async def test_only_those_who_may_read_it_may_watch_it(http: httpx.AsyncClient) -> None:
    owner, stranger = await sign_up(http, "owner"), await sign_up(http, "stranger")
    eid = (await run(http, owner, "print(1)"))["id"]
    assert (await http.get(events_url(eid), headers=stranger)).status_code == 404
    assert (await http.get(events_url(eid))).status_code == 401


async def test_the_stream_stops_at_the_output_cap_and_keeps_what_fit(
    http: httpx.AsyncClient,
) -> None:
    user = await sign_up(http)
    source = "import sys\nfor i in range(100000):\n    sys.stdout.write('x' * 99 + '\\n')\n"
    eid = (await run(http, user, source, limits={"output_kb": 8}))["id"]
    events = await collect(http, events_url(eid), user)
    result = events[-1].data
    assert result["status"] == "output_exceeded"
    assert result["stdout_truncated"] is True
    assert text_of(events) == result["stdout"]
    assert len(result["stdout"]) == 8 * 1024


async def test_cancel_keeps_what_the_program_printed(http: httpx.AsyncClient) -> None:
    user = await sign_up(http)
    eid = (await run(http, user, "import time\nprint('started', flush=True)\ntime.sleep(30)\n"))[
        "id"
    ]
    async with http.stream("GET", events_url(eid), headers=user) as response:
        seen: list[Sse] = []
        async for event in sse_events(response):
            seen.append(event)
            if "started" in text_of(seen):
                cancelled = await http.post(f"/sandbox/executions/{eid}/cancel", headers=user)
                assert cancelled.json()["status"] == "cancelled"
            if event.event == "result":
                break
    result = seen[-1].data
    assert (result["status"], result["stdout"]) == ("cancelled", "started\n")
    stored = (await http.get(f"/sandbox/executions/{eid}", headers=user)).json()
    assert stored["stdout"] == "started\n"
    assert stored["wall_time_ms"] is not None


async def test_an_input_loop_works_turn_by_turn_over_the_websocket(
    api: Api, http: httpx.AsyncClient
) -> None:
    user = await sign_up(http)
    eid = (await run(http, user, INPUT_LOOP, interactive=True))["id"]
    seen: list[dict[str, Any]] = []
    async with await attach(api, eid, user) as ws:
        hello = json.loads(await ws.recv())
        assert hello == {
            "type": "attached",
            "execution_id": eid,
            "interactive": True,
            "writable": True,
        }
        await until_text(ws, "name? ", seen)
        await ws.send(json.dumps({"type": "stdin", "data": "ada\n"}))
        await until_text(ws, "hello ada\n", seen)
        assert "hello grace" not in stdout_of(seen)
        await ws.send(json.dumps({"type": "stdin", "data": "grace\n"}))
        await until_text(ws, "hello grace\nname? ", seen)
        await ws.send(json.dumps({"type": "eof"}))
        result = await until_result(ws, seen)
    assert result["status"] == "succeeded"
    assert result["stdout"] == "name? hello ada\nname? hello grace\nname? bye\n"
    assert stdout_of(seen) == result["stdout"]


async def test_a_c_scanf_loop_gets_each_line_after_compiling(
    api: Api, http: httpx.AsyncClient
) -> None:
    user = await sign_up(http)
    source = (
        "#include <stdio.h>\n"
        "int main(void) { int n; setvbuf(stdout, NULL, _IONBF, 0);\n"
        '  while (printf("n? "), scanf("%d", &n) == 1) printf("%d\\n", n * n);\n'
        '  puts("end"); return 0; }\n'
    )
    eid = (await run(http, user, source, language="c", interactive=True))["id"]
    seen: list[dict[str, Any]] = []
    async with await attach(api, eid, user) as ws:
        await until_text(ws, "n? ", seen)
        await ws.send(json.dumps({"type": "stdin", "data": "7\n"}))
        await until_text(ws, "49\nn? ", seen)
        await ws.send(json.dumps({"type": "stdin", "data": "12\n"}))
        await until_text(ws, "144\nn? ", seen)
        await ws.send(json.dumps({"type": "eof"}))
        result = await until_result(ws, seen)
    assert result["stdout"] == "n? 49\nn? 144\nn? end\n"
    phases = [m["data"].get("phase") for m in seen if m["type"] == "status"]
    assert phases.index("compiling") < phases.index("running")


async def test_sigint_reaches_the_program(api: Api, http: httpx.AsyncClient) -> None:
    user = await sign_up(http)
    source = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *_: (print('interrupted'), sys.exit(3)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    eid = (await run(http, user, source, interactive=True))["id"]
    seen: list[dict[str, Any]] = []
    async with await attach(api, eid, user) as ws:
        await until_text(ws, "ready", seen)
        await ws.send(json.dumps({"type": "signal", "signal": "SIGINT"}))
        result = await until_result(ws, seen)
    assert (result["status"], result["exit_code"], result["stdout"]) == (
        "failed",
        3,
        "ready\ninterrupted\n",
    )


async def test_sigkill_ends_a_program_that_ignores_sigterm(
    api: Api, http: httpx.AsyncClient
) -> None:
    user = await sign_up(http)
    source = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    eid = (await run(http, user, source))["id"]
    seen: list[dict[str, Any]] = []
    async with await attach(api, eid, user) as ws:
        await until_text(ws, "ready", seen)
        await ws.send(json.dumps({"type": "signal", "signal": "SIGKILL"}))
        result = await until_result(ws, seen)
    assert (result["status"], result["signal_name"]) == ("failed", "SIGKILL")


async def test_a_viewer_watches_but_cannot_type(api: Api, http: httpx.AsyncClient) -> None:
    owner, viewer = await sign_up(http, "owner"), await sign_up(http, "viewer")
    session = (
        await http.post(
            "/sessions",
            json={"title": "Pairing", "language": "python", "source": INPUT_LOOP},
            headers=owner,
        )
    ).json()
    invite = (
        await http.post(
            f"/sessions/{session['id']}/invites", json={"role": "viewer"}, headers=owner
        )
    ).json()
    joined = await http.post("/sessions/join", json={"token": invite["token"]}, headers=viewer)
    assert joined.status_code in (200, 201), joined.text
    started = await http.post(
        f"/sessions/{session['id']}/run", json={"interactive": True}, headers=owner
    )
    eid = started.json()["id"]
    watched: list[dict[str, Any]] = []
    async with await attach(api, eid, viewer) as ws:
        hello = json.loads(await ws.recv())
        assert hello["writable"] is False
        await until_text(ws, "name? ", watched)
        await ws.send(json.dumps({"type": "stdin", "data": "mallory\n"}))
        refused = json.loads(await ws.recv())
        while refused["type"] != "error":
            watched.append(refused)
            refused = json.loads(await ws.recv())
        assert refused["code"] == "read_only"
        async with await attach(api, eid, owner) as owner_ws:
            await owner_ws.send(json.dumps({"type": "stdin", "data": "ada\n"}))
            await owner_ws.send(json.dumps({"type": "eof"}))
            result = await until_result(ws, watched)
    assert result["stdout"] == "name? hello ada\nname? bye\n"  # mallory never got in
    assert stdout_of(watched) == result["stdout"]


async def test_every_participant_sees_the_session_s_runs(http: httpx.AsyncClient) -> None:
    owner, viewer = await sign_up(http, "owner"), await sign_up(http, "viewer")
    session = (
        await http.post(
            "/sessions",
            json={"title": "Pairing", "language": "python", "source": "print('shared')"},
            headers=owner,
        )
    ).json()
    invite = (
        await http.post(
            f"/sessions/{session['id']}/invites", json={"role": "viewer"}, headers=owner
        )
    ).json()
    await http.post("/sessions/join", json={"token": invite["token"]}, headers=viewer)
    url = f"/sessions/{session['id']}/events"
    async with http.stream("GET", url, headers=viewer) as response:
        assert response.status_code == 200
        events = sse_events(response)
        started = await http.post(f"/sessions/{session['id']}/run", json={}, headers=owner)
        eid = started.json()["id"]
        seen: list[Sse] = []
        async for event in events:
            seen.append(event)
            if event.event == "result":
                break
    assert {e.data["execution_id"] for e in seen} == {eid}
    assert seen[0].event == "status"
    assert seen[0].data["created_by"] == owner["X-User-Id"]
    assert text_of(seen) == "shared\n"
    assert seen[-1].data["stdout"] == "shared\n"


async def test_a_reader_that_reads_nothing_does_not_hold_up_the_run(
    http: httpx.AsyncClient,
) -> None:
    user = await sign_up(http)
    source = "import sys\nfor i in range(2000):\n    print(str(i).rjust(500, '.'), flush=True)\n"
    eid = (await run(http, user, source, limits={"output_kb": 1024}))["id"]
    async with http.stream("GET", events_url(eid), headers=user) as response:
        reader = sse_events(response)
        first = await anext(reader)
        assert first.event == "status"
        # Not reading: the run still ends (its row says so) within its time.
        async with asyncio.timeout(60):
            while (await http.get(f"/sandbox/executions/{eid}", headers=user)).json()["status"] in (
                "queued",
                "running",
            ):
                await asyncio.sleep(0.1)
        rest = [event async for event in reader]
    result = rest[-1].data
    assert result["status"] == "succeeded"
    assert len(result["stdout"].splitlines()) == 2000
    streamed = text_of(rest)
    if any(e.event == "lagged" for e in rest):  # the window (64 entries) moved on
        assert len(streamed) < len(result["stdout"])
    else:  # the sockets' buffers held all of it
        assert streamed == result["stdout"]


async def test_a_late_subscriber_to_a_trimmed_log_is_told_it_lagged(
    http: httpx.AsyncClient,
) -> None:
    user = await sign_up(http)
    # 200 separate writes (the pause keeps them apart in the pipe), 64 entries kept.
    source = "import time\nfor i in range(200):\n    print(i, flush=True)\n    time.sleep(0.005)\n"
    done = (
        await http.post(
            "/sandbox/executions?wait=true",
            json={"language": "python", "source": source},
            headers=user,
        )
    ).json()
    events = await collect(http, events_url(done["id"]), user)
    assert events[0].event == "lagged"  # the first entries are gone (64 kept)
    assert events[-1].data == done
    assert done["stdout"].endswith(text_of(events))


async def test_live_connections_per_user_are_capped(api: Api, http: httpx.AsyncClient) -> None:
    user = await sign_up(http)
    eid = (await run(http, user, "input()\nprint('done')\n", interactive=True))["id"]
    async with contextlib.AsyncExitStack() as streams:
        for _ in range(3):
            held = await streams.enter_async_context(
                http.stream("GET", events_url(eid), headers=user)
            )
            assert held.status_code == 200
        refused = await http.get(events_url(eid), headers=user)
        assert refused.status_code == 429
        assert refused.json()["code"] == "too_many_streams"
    # The three are closed: a slot is free again (the server notices each disconnect).
    async with asyncio.timeout(30):
        while True:
            try:
                ws = await attach(api, eid, user)
                break
            except InvalidStatus as exc:  # 429 until the server has seen them go
                if exc.response.status_code != 429:
                    raise
                await asyncio.sleep(0.05)
    async with ws:
        await ws.send(json.dumps({"type": "stdin", "data": "\n"}))
        seen: list[dict[str, Any]] = []
        assert (await until_result(ws, seen))["stdout"] == "done\n"


HOLD_THEN_READ = (
    "import signal, sys, time\n"
    "go = False\n"
    "def wake(*_):\n"
    "    global go\n"
    "    go = True\n"
    "signal.signal(signal.SIGUSR1, wake)\n"
    "print('ready', flush=True)\n"
    "while not go:\n"
    "    time.sleep(0.02)\n"
    "total = 0\n"
    "while chunk := sys.stdin.buffer.read1(65536):\n"
    "    total += len(chunk)\n"
    "    print('total', total, flush=True)\n"
    "print('done', total, flush=True)\n"
)


async def _replies_until_invalid(ws: ClientConnection, seen: list[dict[str, Any]]) -> list[str]:
    """The error codes answered up to the `invalid_message` that marks the end of a batch."""
    codes: list[str] = []
    async with asyncio.timeout(60):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] != "error":
                seen.append(message)
            elif message["code"] == "invalid_message":
                return codes
            else:
                codes.append(message["code"])


async def test_unread_stdin_is_bounded_and_refused_until_the_program_reads(
    api: Api, http: httpx.AsyncClient
) -> None:
    user = await sign_up(http)
    limits = {"wall_time_ms": 30000}
    eid = (await run(http, user, HOLD_THEN_READ, interactive=True, limits=limits))["id"]
    chunk = "A" * 60_000
    seen: list[dict[str, Any]] = []
    async with await attach(api, eid, user) as ws:
        await ws.recv()
        await until_text(ws, "ready\n", seen)
        for _ in range(30):  # 1.8 MB to a program that reads nothing yet
            await ws.send(json.dumps({"type": "stdin", "data": chunk}))
        await ws.send(json.dumps({"type": "bogus"}))
        codes = await _replies_until_invalid(ws, seen)
        assert set(codes) == {"stdin_full"}
        accepted = 30 - len(codes)
        # The bound is on input the program has not been handed: what already sits in its
        # stdin pipe (at most the pipe's 64 KiB) has left our buffers.
        assert 0 < accepted * len(chunk) <= 1024 * 1024 + 65536
        # Once the program reads what it holds, input is taken again.
        await ws.send(json.dumps({"type": "signal", "signal": "SIGUSR1"}))
        await until_text(ws, f"total {accepted * len(chunk)}\n", seen)
        async with asyncio.timeout(30):
            while True:  # the runner gives the bytes back within a tenth of a second
                await ws.send(json.dumps({"type": "stdin", "data": "tail"}))
                await ws.send(json.dumps({"type": "bogus"}))
                if not await _replies_until_invalid(ws, seen):
                    break
        await ws.send(json.dumps({"type": "eof"}))
        result = await until_result(ws, seen)
    assert result["stdout"].endswith(f"done {accepted * len(chunk) + 4}\n")
