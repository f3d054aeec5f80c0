"""Two API instances on one PostgreSQL and Redis: one document, wherever clients connect."""

from __future__ import annotations

import asyncio
import signal

import pytest

from coderoom.core.closecodes import CloseCode
from tests.live.conftest import Deployment
from tests.support.live import add_member, call, connect, live_url, new_session, person
from tests.support.yclient import YClient

pytestmark = [pytest.mark.server, pytest.mark.postgres, pytest.mark.redis]


async def test_clients_on_two_instances_converge(cluster: Deployment) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    ada = await person(a, "ada")
    sid = await new_session(a, ada, source="ab")
    on_a = await connect(a, ada, sid)
    on_b = await connect(b, ada, sid)
    before_a, before_b = on_a.doc.get_state(), on_b.doc.get_state()
    on_a.text_obj("main.py").insert(1, "AAA")
    on_b.text_obj("main.py").insert(1, "BBB")
    await asyncio.gather(on_a.send_since(before_a), on_b.send_since(before_b))
    await on_a.wait_for(lambda: "AAA" in on_a.text("main.py") and "BBB" in on_a.text("main.py"))
    await on_b.wait_for(lambda: on_b.text("main.py") == on_a.text("main.py"))
    await on_a.set_awareness(31337, 1, {"user": {"name": "ada"}})
    await on_b.wait_for(lambda: on_b.awareness.get(31337) == {"user": {"name": "ada"}})
    body = await call(b, "GET", f"/sessions/{sid}", ada)
    assert body["files"]["main.py"] == on_a.text("main.py")
    assert [p["user_id"] for p in body["present"]] == [ada.id]
    await on_a.close()
    await on_b.close()


async def test_a_rest_write_on_one_instance_reaches_live_clients_on_the_other(
    cluster: Deployment,
) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    ada = await person(a, "ada")
    sid = await new_session(a, ada, source="x = 1\n")
    on_b = await connect(b, ada, sid)
    await call(a, "PATCH", f"/sessions/{sid}", ada, {"files": {"util.py": "y = 2\n"}})
    await on_b.wait_for(lambda: on_b.files().get("util.py") == "y = 2\n")
    await on_b.close()


async def test_removal_through_one_instance_closes_a_connection_on_the_other(
    cluster: Deployment,
) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    owner = await person(a, "owner")
    sid = await new_session(a, owner)
    editor = await add_member(a, owner, sid, "editor")
    on_b = await connect(b, editor, sid)
    await call(a, "DELETE", f"/sessions/{sid}/participants/{editor.id}", owner, expect=204)
    assert await on_b.wait_closed() == CloseCode.FORBIDDEN


async def test_kill_9_of_an_instance_loses_nothing_a_client_elsewhere_saw(
    cluster: Deployment,
) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    ada = await person(a, "ada")
    sid = await new_session(a, ada, source="")
    typist = await connect(a, ada, sid)
    witness = await connect(b, ada, sid)
    for number in range(40):
        await typist.insert("main.py", len(typist.text("main.py")), f"[{number}]")
    await witness.wait_for(lambda: "[5]" in witness.text("main.py"))
    seen = witness.text("main.py")
    a.process.send_signal(signal.SIGKILL)
    a.process.wait()
    await typist.wait_closed()
    # Everything the witness saw was stored before it was sent: a fresh reader has it.
    fresh = await connect(b, ada, sid)
    assert fresh.text("main.py").startswith(seen)
    # The typist reconnects elsewhere with its local state, as y-websocket does: the sync
    # hands the server whatever it never stored, and everyone converges on all 40 edits.
    again = YClient(live_url(b, sid), ada.headers)
    again.doc.apply_update(typist.doc.get_update())
    await again.connect()
    expected = "".join(f"[{number}]" for number in range(40))
    for client in (again, witness, fresh):
        await client.wait_for(lambda c=client: c.text("main.py") == expected)  # type: ignore[misc]
    for client in (again, witness, fresh):
        await client.close()


async def test_edits_made_while_redis_was_away_reach_the_other_instance(
    cluster: Deployment,
) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    assert cluster.redis is not None
    ada = await person(a, "ada")
    sid = await new_session(a, ada, source="")
    on_a = await connect(a, ada, sid)
    on_b = await connect(b, ada, sid)
    cluster.redis.stop()
    await on_a.insert("main.py", 0, "typed during the outage\n")
    # Stored all the same (the fan-out failed, not the write).
    while "outage" not in (await call(a, "GET", f"/sessions/{sid}", ada))["files"]["main.py"]:
        await asyncio.sleep(0.05)
    cluster.redis.start()
    # B re-subscribes when Redis is back and re-reads the log: its client catches up.
    await on_b.wait_for(lambda: on_b.text("main.py") == "typed during the outage\n", within=60)
    await on_a.close()
    await on_b.close()
