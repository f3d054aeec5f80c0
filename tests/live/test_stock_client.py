"""The stock npm clients (yjs + y-websocket's WebsocketProvider) work against the live
endpoint unchanged: roomname `<id>/live` on serverUrl `ws://host/api/v1/sessions`."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from tests.support.cluster import Api
from tests.support.live import connect, new_session, person

pytestmark = pytest.mark.server

NODE_DIR = Path(__file__).resolve().parents[1] / "support" / "node"


@pytest.fixture
def node() -> str:
    binary = shutil.which("node")
    if binary is None or not (NODE_DIR / "node_modules" / "y-websocket").exists():
        pytest.fail(
            "node and tests/support/node/node_modules are required: run scripts/bootstrap.sh"
        )
    return binary


async def test_yjs_and_y_websocket_edit_with_a_python_peer(embedded_api: Api, node: str) -> None:
    ada = await person(embedded_api, "ada")
    sid = await new_session(embedded_api, ada, source="print('hi')\n")
    peer = await connect(embedded_api, ada, sid)
    token = ada.headers["Authorization"].removeprefix("Bearer ")
    server_url = embedded_api.url.replace("http://", "ws://") + "/sessions"
    process = await asyncio.create_subprocess_exec(
        node,
        str(NODE_DIR / "stock_client.mjs"),
        server_url,
        f"{sid}/live",
        token,
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        synced = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert synced == {"synced": "print('hi')\n"}
        await peer.wait_for(lambda: peer.text("main.py") == "from node\nprint('hi')\n")
        await peer.wait_for(
            lambda: {"name": "node"} in [s.get("user") for s in peer.awareness.values() if s]
        )
        await peer.insert("main.py", len(peer.text("main.py")), "# from python\n")
        final = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert final == {"final": "from node\nprint('hi')\n# from python\n"}
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await peer.close()
