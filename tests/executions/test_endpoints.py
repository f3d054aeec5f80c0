"""Running code through the API in the real sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from coderoom.sandbox import MAXIMA, Limits
from tests.sandbox.test_escape import host_processes_with
from tests.support.factories import create_session, invite, join, user

TRICKY = "<script>alert(1)</script> a < b && c > d &amp; \u00e9"


async def run(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    payload = {"language": "python", **body}
    return await client.post("/api/v1/sandbox/executions?wait=true", json=payload, headers=headers)


async def until(
    client: httpx.AsyncClient, headers: dict[str, str], eid: str, statuses: set[str]
) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body: dict[str, Any] = (
            await client.get(f"/api/v1/sandbox/executions/{eid}", headers=headers)
        ).json()
        if body["status"] in statuses:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"execution never reached {statuses}")


async def test_languages_are_listed_without_signing_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/sandbox/languages")
    assert response.status_code == 200
    python = next(item for item in response.json() if item["id"] == "python")
    assert python | {"version": "", "notes": ""} == {
        "id": "python",
        "name": "Python",
        "version": "",
        "aliases": ["py", "python3", "py3"],
        "extensions": [".py"],
        "compiled": False,
        "file_name": "main.py",
        "arguments": True,
        "limits": Limits().as_dict(),
        "maxima": MAXIMA.as_dict(),
        "compile_limits": None,
        "compile_maxima": None,
        "notes": "",
    }
    assert python["version"].startswith("3.")


async def test_wait_true_returns_the_full_result(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    response = await run(
        client,
        ada,
        source="import sys\nprint(sys.stdin.read().upper(), sys.argv[1:])",
        stdin="hi",
        args=["x"],
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["stdout"] == "HI ['x']\n"
    assert body["exit_code"] == 0
    assert body["created_by"] == ada["X-User-Id"]
    assert body["limits"]["memory_mb"] == 256
    assert body["started_at"]
    assert body["finished_at"]
    assert response.headers["location"] == f"/api/v1/sandbox/executions/{body['id']}"


async def test_default_is_202_then_the_result_is_readable(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    response = await client.post(
        "/api/v1/sandbox/executions",
        json={"language": "python", "source": "print(6*7)"},
        headers=ada,
    )
    assert response.status_code == 202
    assert response.json()["status"] in {"queued", "running"}
    done = await until(client, ada, response.json()["id"], {"succeeded"})
    assert done["stdout"] == "42\n"


async def test_code_stdin_args_and_output_are_byte_for_byte(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    source = f"# {TRICKY}\nimport sys\nprint(sys.stdin.read(), end='')\nprint(sys.argv[1], end='')"
    body = (await run(client, ada, source=source, stdin=TRICKY, args=[TRICKY])).json()
    assert body["stdout"] == TRICKY + TRICKY
    listed = (await client.get("/api/v1/sandbox/executions", headers=ada)).json()["items"]
    assert listed[0]["stdout"] == TRICKY + TRICKY


async def test_multi_file_programs(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    files = [
        {"name": "main.py", "content": "import helper; helper.go()"},
        {"name": "helper.py", "content": "def go(): print('helped')"},
    ]
    body = (await run(client, ada, files=files)).json()
    assert body["stdout"] == "helped\n"


async def test_verdicts_come_through(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    timed = (await run(client, ada, source="while True: pass", limits={"cpu_time_ms": 300})).json()
    assert timed["status"] == "timed_out"
    assert "CPU" in timed["message"]
    failed = (await run(client, ada, source="raise SystemExit(3)")).json()
    assert (failed["status"], failed["exit_code"]) == ("failed", 3)
    compile_error = (await run(client, ada, language="c", source="int main( { }")).json()
    assert compile_error["status"] == "compile_error"
    assert "error" in compile_error["compile_output"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"limits": {"memory_mb": 4096}}, "body.limits.memory_mb"),
        ({"limits": {"wall_time_ms": 31_000}}, "body.limits.wall_time_ms"),
        ({"limits": {"cpu_time_ms": 0}}, "body.limits.cpu_time_ms"),
        ({"limits": {"network": True}}, "body.limits.network"),
    ],
)
async def test_limits_over_the_maxima_are_a_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    ada = await user(client, "ada")
    response = await run(client, ada, source="print(1)", **body)
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_bad_requests_change_nothing(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    unknown = await run(client, ada, language="brainfuck", source="x")
    assert unknown.status_code == 422
    assert "python" in unknown.json()["known_languages"]
    both = await run(client, ada, source="x", files=[{"name": "a.py", "content": "x"}])
    assert both.status_code == 422
    bad_name = await run(client, ada, files=[{"name": "../etc/passwd", "content": "x"}])
    assert bad_name.status_code == 422
    too_big = await run(client, ada, source="#" * (257 * 1024))
    assert too_big.status_code == 413
    assert (await client.get("/api/v1/sandbox/executions", headers=ada)).json()["items"] == []


async def test_per_user_quota_then_cancel_kills_the_program(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ada = await user(client, "ada")
    marker = uuid.uuid4().hex[:10]
    ids = []
    for _ in range(4):
        response = await client.post(
            "/api/v1/sandbox/executions",
            json={
                "language": "bash",
                "source": f"exec -a sleeper-{marker} sleep 25",
                "limits": {"wall_time_ms": 30000},
            },
            headers=ada,
        )
        assert response.status_code == 202
        ids.append(response.json()["id"])
    fifth = await client.post(
        "/api/v1/sandbox/executions", json={"language": "python", "source": "1"}, headers=ada
    )
    assert fifth.status_code == 429
    running = await until(client, ada, ids[0], {"running"})
    assert running["started_at"]
    deadline = time.monotonic() + 10
    while not host_processes_with(f"sleeper-{marker}") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for eid in ids:
        cancelled = await client.post(f"/api/v1/sandbox/executions/{eid}/cancel", headers=ada)
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
    deadline = time.monotonic() + 10
    while host_processes_with(f"sleeper-{marker}") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert host_processes_with(f"sleeper-{marker}") == []
    again = await client.post(f"/api/v1/sandbox/executions/{ids[0]}/cancel", headers=ada)
    assert again.json()["status"] == "cancelled"
    after = await run(client, ada, source="print('room again')")
    assert after.json()["stdout"] == "room again\n"


async def test_finished_executions_are_not_cancelled(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    done = (await run(client, ada, source="print(1)")).json()
    response = await client.post(f"/api/v1/sandbox/executions/{done['id']}/cancel", headers=ada)
    assert response.json()["status"] == "succeeded"


async def test_strangers_cannot_see_or_cancel(client: httpx.AsyncClient) -> None:
    ada, eve = await user(client, "ada"), await user(client, "eve")
    done = (await run(client, ada, source="print('secret')")).json()
    assert (
        await client.get(f"/api/v1/sandbox/executions/{done['id']}", headers=eve)
    ).status_code == 404
    assert (
        await client.post(f"/api/v1/sandbox/executions/{done['id']}/cancel", headers=eve)
    ).status_code == 404
    assert (await client.get("/api/v1/sandbox/executions", headers=eve)).json()["items"] == []
    assert (
        await client.post("/api/v1/sandbox/executions", json={"language": "python", "source": "1"})
    ).status_code == 401


async def test_sessions_run_their_source_and_share_their_history(client: httpx.AsyncClient) -> None:
    ada, ed, vic = await user(client, "ada"), await user(client, "ed"), await user(client, "vic")
    sid = (
        await create_session(client, ada, source="import sys; print('session', sys.stdin.read())")
    )["id"]
    await join(client, ed, (await invite(client, ada, sid, role="editor"))["token"])
    await join(client, vic, (await invite(client, ada, sid, role="viewer"))["token"])
    ran = await client.post(
        f"/api/v1/sessions/{sid}/run?wait=true", json={"stdin": "in"}, headers=ed
    )
    assert ran.status_code == 200
    assert ran.json()["stdout"] == "session in\n"
    assert ran.json()["session_id"] == sid
    linked = await run(client, ada, source="print('linked')", session_id=sid)
    assert linked.status_code == 200
    history = (await client.get(f"/api/v1/sessions/{sid}/executions", headers=vic)).json()["items"]
    assert [e["stdout"] for e in history] == ["linked\n", "session in\n"]
    assert (
        await client.get(f"/api/v1/sandbox/executions/{ran.json()['id']}", headers=vic)
    ).status_code == 200
    assert (
        await client.post(f"/api/v1/sandbox/executions/{ran.json()['id']}/cancel", headers=vic)
    ).status_code == 403
    assert (await run(client, vic, source="1", session_id=sid)).status_code == 403
    assert (await client.delete(f"/api/v1/sessions/{sid}", headers=ada)).status_code == 204
    kept = await client.get(f"/api/v1/sandbox/executions/{ran.json()['id']}", headers=ed)
    assert kept.status_code == 200
    assert kept.json()["session_id"] is None
    assert (
        await client.get(f"/api/v1/sandbox/executions/{ran.json()['id']}", headers=vic)
    ).status_code == 404


async def test_history_pages_newest_first(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    ids = [(await run(client, ada, source=f"print({i})")).json()["id"] for i in range(3)]
    first = (await client.get("/api/v1/sandbox/executions?limit=2", headers=ada)).json()
    assert [e["id"] for e in first["items"]] == [ids[2], ids[1]]
    rest = (
        await client.get(
            f"/api/v1/sandbox/executions?limit=2&cursor={first['next_cursor']}", headers=ada
        )
    ).json()
    assert [e["id"] for e in rest["items"]] == [ids[0]]


async def test_nul_is_refused_in_code_and_replaced_in_output(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    for body in (
        {"source": "print(1)\x00"},
        {"source": "print(1)", "stdin": "\x00"},
        {"source": "1", "args": ["a\x00"]},
    ):
        response = await run(client, ada, **body)
        assert response.status_code == 422, body
    session = await client.post(
        "/api/v1/sessions",
        json={"title": "t", "language": "python", "source": "x\x00"},
        headers=ada,
    )
    assert session.status_code == 422
    printed = (await run(client, ada, source="import sys; sys.stdout.write('a\\x00b')")).json()
    assert (printed["status"], printed["stdout"]) == ("succeeded", "a\ufffdb")


async def test_lone_surrogates_are_malformed_json_everywhere(client: httpx.AsyncClient) -> None:
    ada = await user(client, "ada")
    json_headers = {**ada, "Content-Type": "application/json"}
    bodies = [
        ("/api/v1/sandbox/executions", '{"language": "python", "source": "print(1) \\ud800"}'),
        ("/api/v1/sessions", '{"title": "t \\udfff", "language": "python"}'),
        ("/api/v1/auth/register", '{"email": "s@example.com", "password": "long-enough-\\ud800"}'),
        ("/api/v1/auth/login", '{"email": "s@example.com", "password": "x\\ud800"}'),
    ]
    for path, raw in bodies:
        response = await client.post(path, content=raw.encode(), headers=json_headers)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["code"] == "malformed_json"
