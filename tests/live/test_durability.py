"""Nothing accepted is lost: updates are in the database before anyone sees them, the log
compacts, a restarted server resumes from it, and REST reads and writes the same document."""

from __future__ import annotations

import asyncio
import signal

import pytest
from sqlalchemy import func, select

from coderoom.infra.db import create_engine, create_sessionmaker
from coderoom.live.models import LiveUpdate
from tests.conftest import make_settings
from tests.live.conftest import Deployment
from tests.support.cluster import Api
from tests.support.live import add_member, call, connect, new_session, person
from tests.support.server import wait_until

pytestmark = pytest.mark.server


async def _rows(database_url: str) -> int:
    engine = create_engine(make_settings(database_url=database_url))
    try:
        async with create_sessionmaker(engine)() as db:
            return int(
                (await db.execute(select(func.count()).select_from(LiveUpdate))).scalar_one()
            )
    finally:
        await engine.dispose()


async def test_kill_9_loses_nothing_a_peer_has_seen(embedded: Deployment) -> None:
    api = embedded.start()
    ada = await person(api, "ada")
    sid = await new_session(api, ada, source="")
    typist = await connect(api, ada, sid)
    witness = await connect(api, ada, sid)
    for number in range(40):
        await typist.insert("main.py", len(typist.text("main.py")), f"[{number}]")
    await witness.wait_for(lambda: "[10]" in witness.text("main.py"))
    seen = witness.text("main.py")  # what a peer saw at the instant of the crash
    api.process.send_signal(signal.SIGKILL)
    api.process.wait()

    again = embedded.start()
    reader = await connect(again, ada, sid)
    assert reader.text("main.py").startswith(seen)
    await reader.close()


async def test_the_log_is_compacted_and_reloads_the_same(embedded: Deployment) -> None:
    api = embedded.start(LIVE_COMPACT_EVERY="20")
    ada = await person(api, "ada")
    sid = await new_session(api, ada, source="")
    typist = await connect(api, ada, sid)
    for number in range(100):
        await typist.insert("main.py", 0, f"{number % 10}")
    await typist.insert("main.py", 0, "end:")
    # Wait for a fact, not a time: the last edit is stored (a GET reads the database).
    while not (await call(api, "GET", f"/sessions/{sid}", ada))["files"]["main.py"].startswith(
        "end:"
    ):
        await asyncio.sleep(0.02)
    expected = typist.text("main.py")
    assert await _rows(embedded.env["DATABASE_URL"]) < 60  # 102 updates, compacted
    await typist.close()
    api.stop()
    again = embedded.start()
    reader = await connect(again, ada, sid)
    assert reader.text("main.py") == expected
    await reader.close()


async def test_rest_patch_merges_with_concurrent_live_edits(embedded_api: Api) -> None:
    ada = await person(embedded_api, "ada")
    sid = await new_session(embedded_api, ada, source="line one\nline two\n")
    stale = await call(embedded_api, "GET", f"/sessions/{sid}", ada)
    live = await connect(embedded_api, ada, sid)
    await live.insert("main.py", 0, "# live comment\n")
    # The REST client edits the copy it read before the live edit and says so (base_source):
    # only its own change (the second line) is applied, so the live edit survives.
    patched = await call(
        embedded_api,
        "PATCH",
        f"/sessions/{sid}",
        ada,
        {"source": stale["source"].replace("line two", "line 2"), "base_source": stale["source"]},
    )
    await live.wait_for(lambda: "line 2" in live.text("main.py"))
    assert live.text("main.py") == "# live comment\nline one\nline 2\n"
    assert patched["files"]["main.py"] == live.text("main.py")
    assert patched["version"] == stale["version"] + 1
    await live.close()


async def test_a_run_executes_every_file_the_document_holds(embedded_api: Api) -> None:
    ada = await person(embedded_api, "ada")
    sid = await new_session(embedded_api, ada, source="")
    await call(embedded_api, "PATCH", f"/sessions/{sid}", ada, {"files": {"helper.py": "X = 41\n"}})
    live = await connect(embedded_api, ada, sid)
    assert live.files() == {"main.py": "", "helper.py": "X = 41\n"}
    await live.insert("main.py", 0, "from helper import X\nprint(X + 1)\n")
    while "print" not in (await call(embedded_api, "GET", f"/sessions/{sid}", ada))["source"]:
        await asyncio.sleep(0.02)
    result = await call(embedded_api, "POST", f"/sessions/{sid}/run?wait=true", ada, {})
    assert result["status"] == "succeeded", result
    assert result["stdout"] == "42\n"
    await live.close()


async def test_get_lists_who_is_connected(embedded_api: Api) -> None:
    ada = await person(embedded_api, "ada")
    sid = await new_session(embedded_api, ada)
    bob = await add_member(embedded_api, ada, sid, "viewer")
    before = await call(embedded_api, "GET", f"/sessions/{sid}", ada)
    assert before["present"] == []
    client = await connect(embedded_api, bob, sid)
    during = await call(embedded_api, "GET", f"/sessions/{sid}", ada)
    assert during["present"] == [{"user_id": bob.id, "display_name": "viewer"}]
    await client.close()
    await client.wait_closed()
    while (await call(embedded_api, "GET", f"/sessions/{sid}", ada))["present"]:
        await asyncio.sleep(0.02)


async def test_an_idle_room_is_unloaded_and_comes_back(embedded: Deployment) -> None:
    api = embedded.start(LIVE_IDLE_SECONDS="0.5")
    ada = await person(api, "ada")
    sid = await new_session(api, ada, source="kept\n")
    client = await connect(api, ada, sid)
    await client.insert("main.py", 0, "still ")
    await client.close()
    wait_until(lambda: "live.room_unloaded" in api.text())
    again = await connect(api, ada, sid)
    assert again.text("main.py") == "still kept\n"
    await again.close()
