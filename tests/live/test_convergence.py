"""Clients editing the same text at once end with the same text, everywhere."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Text

from coderoom import migrations
from coderoom.live import document
from tests.conftest import make_settings
from tests.support.cluster import Api
from tests.support.live import LIVE_ENV, call, connect, new_session, person
from tests.support.yclient import YClient

pytestmark = pytest.mark.server


async def test_concurrent_inserts_at_the_same_position_converge(embedded_api: Api) -> None:
    ada = await person(embedded_api, "ada")
    sid = await new_session(embedded_api, ada, source="ab")
    one = await connect(embedded_api, ada, sid)
    two = await connect(embedded_api, ada, sid)
    # Both change their own copy before either hears of the other's change.
    before_one, before_two = one.doc.get_state(), two.doc.get_state()
    one.text_obj("main.py").insert(1, "111")
    two.text_obj("main.py").insert(1, "222")
    await asyncio.gather(one.send_since(before_one), two.send_since(before_two))

    await one.wait_for(lambda: "111" in one.text("main.py") and "222" in one.text("main.py"))
    await two.wait_for(lambda: two.text("main.py") == one.text("main.py"))
    assert one.text("main.py") in ("a111222b", "a222111b")
    body = await call(embedded_api, "GET", f"/sessions/{sid}", ada)
    assert body["files"]["main.py"] == one.text("main.py")
    await one.close()
    await two.close()


async def test_a_late_joiner_gets_the_whole_document(embedded_api: Api) -> None:
    ada = await person(embedded_api, "ada")
    sid = await new_session(embedded_api, ada, source="")
    first = await connect(embedded_api, ada, sid)
    for word in ["alpha ", "beta ", "gamma "]:
        await first.insert("main.py", len(first.text("main.py").encode()), word)
    late = await connect(embedded_api, ada, sid)
    await late.wait_for(lambda: late.text("main.py") == "alpha beta gamma ")
    await first.close()
    await late.close()


# --- the property: any concurrent edits converge to the CRDT merge of all of them ---------


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp: Path = tmp_path_factory.mktemp("live-property")
    url = f"sqlite+aiosqlite:///{tmp}/coderoom.sqlite3"
    migrations.upgrade(make_settings(database_url=url))
    api = Api("api", tmp, {"DATABASE_URL": url, **LIVE_ENV})
    try:
        yield api
    finally:
        api.stop()


async def _until_text(client: YClient, expected: str) -> None:
    await client.wait_for(lambda: client.text("main.py") == expected)


Edit = tuple[int, bool, float, str, int]  # client, insert?, where (0..1), text, delete length
edits = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.booleans(),
        st.floats(0, 1),
        st.text(alphabet="ab\n😀é", min_size=1, max_size=4),
        st.integers(1, 3),
    ),
    min_size=1,
    max_size=30,
)


def _apply(text: Text, edit: Edit) -> None:
    _, insert, where, chars, length = edit
    current = str(text)
    at = round(where * len(current))
    offset = len(current[:at].encode())  # pycrdt indexes UTF-8 bytes
    if insert:
        text.insert(offset, chars)
    elif at < len(current):
        end = len(current[: at + length].encode())
        del text[offset:end]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(script=edits)
async def test_random_concurrent_edits_converge(shared_api: Api, script: list[Edit]) -> None:
    ada = await person(shared_api, "ada")
    sid = await new_session(shared_api, ada, source="hello world\n")
    clients = [await connect(shared_api, ada, sid) for _ in range(3)]
    try:
        # Each edit is made locally and sent at once, while the others' updates arrive
        # whenever the event loop lets them: real interleaving, not turns.
        for edit in script:
            client = clients[edit[0]]
            before = client.doc.get_state()
            _apply(client.text_obj("main.py"), edit)
            await client.send_since(before)
        merged = document.load([client.doc.get_update() for client in clients])
        expected = document.contents(merged).files["main.py"]
        for client in clients:
            await _until_text(client, expected)
        body = await call(shared_api, "GET", f"/sessions/{sid}", ada)
        assert body["files"]["main.py"] == expected
    finally:
        for client in clients:
            await client.close()
