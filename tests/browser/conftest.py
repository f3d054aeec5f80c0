"""Browser tests: Debian's chromium, driven by Playwright, against a real `coderoom serve`.

The server is the installed `coderoom` command on a migrated SQLite file of its own, with
the embedded execution backend and the built web app (web/dist, `make web`). Nothing is
mocked: the browser signs up, opens sockets and runs programs in the real sandbox.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.support.server import wait_until
from tests.support.services import REDIS_PREFIX, free_port, unavailable

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "web" / "dist"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CODEROOM = str(Path(sys.executable).with_name("coderoom"))


class LiveServer:
    """`coderoom serve` in its own process group, stopped with everything it started."""

    def __init__(self, tmp: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "server.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
        environment.update(
            {
                "ENVIRONMENT": "development",
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'coderoom.sqlite3'}",
                "REDIS_PREFIX": REDIS_PREFIX,
                "CORS_ORIGINS": self.url,
                "WEB_DIST_DIR": str(DIST),
                "LOG_FORMAT": "json",
                "ARGON2_MEMORY_KIB": "1024",
                "ARGON2_TIME_COST": "1",
                **env,
            }
        )
        environment.pop("REDIS_URL", None)
        subprocess.run([CODEROOM, "migrate"], env=environment, cwd=tmp, check=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [CODEROOM, "serve"],
                env=environment,
                cwd=tmp,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self.ready, timeout=60)

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"server exited:\n{self.log.read_text()}")
        try:
            return httpx.get(f"{self.url}/api/v1/health/live", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        os.killpg(self.process.pid, 9)
        self.process.wait()


@pytest.fixture(scope="session")
def built_app() -> Path:
    if not (DIST / "index.html").is_file():
        if os.environ.get("CI"):
            pytest.fail("web/dist is missing: `make test-browser` builds it first")
        unavailable(
            "The built web app", "web/dist is missing: run `make web` or `make test-browser`"
        )
    return DIST


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver")
        unavailable(str(CHROMIUM), "not installed: apt-get install chromium chromium-driver")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
    )
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def server(built_app: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("server"),
        RATE_LIMIT_API="100000/minute",
        RATE_LIMIT_AUTH="100000/minute",
        RATE_LIMIT_EXECUTION="100000/minute",
        RATE_LIMIT_SESSION="100000/minute",
    )
    yield live
    live.stop()
