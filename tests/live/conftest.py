"""Live tests run the real server as a process and talk to it with real WebSocket clients.

`embedded`: one API on an SQLite file, no Redis (the default deployment).
`cluster`: a PostgreSQL database and a private Redis, on which tests start API instances.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from coderoom import migrations
from tests.conftest import make_settings
from tests.support.cluster import Api, RedisServer
from tests.support.live import LIVE_ENV
from tests.support.services import create_postgres_database, drop_postgres_database

pytestmark = pytest.mark.server


@dataclass
class Deployment:
    tmp: Path
    env: dict[str, str]
    apis: list[Api] = field(default_factory=list)
    redis: RedisServer | None = None

    def start(self, name: str = "api", **env: str) -> Api:
        api = Api(f"{name}-{len(self.apis)}", self.tmp, {**self.env, **env})
        self.apis.append(api)
        return api


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Deployment]:
    url = f"sqlite+aiosqlite:///{tmp_path}/coderoom.sqlite3"
    migrations.upgrade(make_settings(database_url=url))
    deployment = Deployment(tmp_path, {"DATABASE_URL": url, **LIVE_ENV})
    try:
        yield deployment
    finally:
        for api in deployment.apis:
            api.stop()


@pytest.fixture
def embedded_api(embedded: Deployment) -> Api:
    return embedded.start()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Deployment]:
    url = create_postgres_database()
    redis = RedisServer(tmp_path)
    deployment = Deployment(
        tmp_path, {"DATABASE_URL": url, "REDIS_URL": redis.url, **LIVE_ENV}, redis=redis
    )
    try:
        migrations.upgrade(make_settings(database_url=url))
        yield deployment
    finally:
        for api in deployment.apis:
            api.stop()
        redis.stop()
        drop_postgres_database(url)


StartApi = Callable[..., Api]
