"""docs/API.md runs: every ```sh block, in document order, in one `bash -euo pipefail`.

The blocks run against a real `coderoom serve` (its own PostgreSQL database, the embedded
execution pool) with `API` set, `curl`, `jq` and `python3` (the project's venv, so httpx and
websockets import) on PATH, and the server's environment (DATABASE_URL, METRICS_TOKEN) for
the few examples that run on the server host (`coderoom users create`). A block that fails
stops the run, and the failure names it by its line in API.md. Blocks state what they
expect (`jq -e`), so a doc that drifts from the service fails here, not in a reader's shell.

Then every operation in the OpenAPI document must have been called by some block (from the
server's access log), so a route cannot go undocumented.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coderoom import migrations
from coderoom.config import Settings
from tests.support.server import CODEROOM_SERVE, Server, wait_until
from tests.support.services import create_postgres_database, drop_postgres_database

pytestmark = [pytest.mark.server, pytest.mark.contract]

API_MD = Path(__file__).resolve().parents[2] / "docs" / "API.md"
METRICS_TOKEN = "docs-metrics-token-0123456789abcdef"
ENVIRONMENT = {
    "ENVIRONMENT": "test",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "json",
    "ARGON2_MEMORY_KIB": "1024",
    "ARGON2_TIME_COST": "1",
    "METRICS_TOKEN": METRICS_TOKEN,
    "WORKER_METRICS_PORT": "0",
    "REGISTRATION": "open",
    # The page signs in more often than the default auth limit allows (it says so).
    "RATE_LIMIT_AUTH": "1000/minute",
    "RATE_LIMIT_API": "1000/minute",
    "RATE_LIMIT_EXECUTION": "1000/minute",
}
_FENCE = re.compile(r"^```sh\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def sh_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every ```sh block, in order."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _FENCE.finditer(text)]


def script(blocks: list[tuple[int, str]]) -> str:
    parts = ["trap 'echo \"docs/API.md: the block at line $BLOCK failed\" >&2' ERR"]
    for line, code in blocks:
        parts.append(f"BLOCK={line}\n{code}")
    return "\n".join(parts)


def test_sh_blocks_are_found_in_order() -> None:
    text = "a\n```sh\necho 1\n```\n```json\n{}\n```\n```sh\necho 2\n```\n"
    assert sh_blocks(text) == [(2, "echo 1\n"), (8, "echo 2\n")]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    if shutil.which("jq") is None:
        pytest.fail("jq is not installed (scripts/bootstrap.sh installs it)")
    url = create_postgres_database()
    try:
        migrations.upgrade(Settings(_env_file=None, environment="test", database_url=url))
        running = Server(tmp_path, url, argv=CODEROOM_SERVE, **ENVIRONMENT)
        try:
            wait_until(running.ready, timeout=60)
            yield running
        finally:
            running.stop()
    finally:
        drop_postgres_database(url)


def called_operations(log: str, schema: dict[str, object]) -> set[tuple[str, str]]:
    """(METHOD, path template) of each documented operation the access log shows."""
    paths = schema["paths"]
    assert isinstance(paths, dict)
    templates = [
        (method.upper(), template, re.compile(re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"))
        for template, operations in paths.items()
        for method in operations
    ]
    called = set()
    for line in log.splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("event") != "request":
            continue
        for method, template, pattern in templates:
            if entry["method"] == method and pattern.match(entry["path"]):
                called.add((method, template))
    return called


def test_every_sh_block_of_api_md_runs_and_covers_every_route(
    server: Server, tmp_path: Path
) -> None:
    blocks = sh_blocks(API_MD.read_text())
    assert len(blocks) > 20
    venv_bin = str(Path(sys.executable).parent)
    environment = {
        **os.environ,
        **ENVIRONMENT,
        "API": f"{server.url}/api/v1",
        "DATABASE_URL": server.database_url,
        "PATH": f"{venv_bin}:{os.environ['PATH']}",
    }
    before = len(server.log.read_text())  # the readiness polls are not the docs' calls
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script(blocks)],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"{result.stderr}\n--- stdout ---\n{result.stdout}"
    schema = httpx.get(f"{server.url}/api/v1/openapi.json").json()
    every = {
        (method.upper(), template)
        for template, operations in schema["paths"].items()
        for method in operations
    }
    undocumented = every - called_operations(server.log.read_text()[before:], schema)
    assert sorted(undocumented) == []
