"""Prometheus metrics: what /metrics says after real requests and executions, who may read
it, and that it adds up across processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from coderoom import migrations
from tests.conftest import make_settings
from tests.support.app import running
from tests.support.cluster import Api, Proc, RedisServer, Worker
from tests.support.factories import bearer, user
from tests.support.server import Server, wait_until
from tests.support.services import create_postgres_database, drop_postgres_database, free_port

TOKEN = "metrics-token-" + "m" * 20


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


async def test_metrics_describe_real_requests_and_executions(client: httpx.AsyncClient) -> None:
    before = (await client.get("/metrics")).text
    headers = await user(client)
    await client.get("/api/v1/auth/me")
    await client.get(f"/api/v1/sessions/{uuid.uuid4()}", headers=headers)
    await client.get("/api/v1/no/such/thing")
    ran = await client.post(
        "/api/v1/sandbox/executions?wait=true",
        json={"language": "python", "source": "print('hi')"},
        headers=headers,
    )
    assert ran.json()["status"] == "succeeded"
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text

    def grew(name: str, by: float = 1, **labels: str) -> bool:
        return value(after, name, **labels) - value(before, name, **labels) == by

    assert grew("coderoom_http_requests_total", method="GET", route="/api/v1/auth/me", status="401")
    assert grew(
        "coderoom_http_requests_total",
        method="GET",
        route="/api/v1/sessions/{session_id}",
        status="404",
    )
    assert grew("coderoom_http_requests_total", method="GET", route="unmatched", status="404")
    assert grew(
        "coderoom_http_request_duration_seconds_count",
        method="POST",
        route="/api/v1/sandbox/executions",
    )
    assert grew("coderoom_executions_total", language="python", status="succeeded")
    assert grew("coderoom_queue_wait_seconds_count")
    for phase in ("total", "run", "overhead"):
        assert grew("coderoom_sandbox_phase_seconds_count", phase=phase)
    assert value(after, "coderoom_queue_depth") == 0
    assert value(after, "coderoom_live_sessions") == 0
    assert value(after, "coderoom_live_connections", kind="websocket") == 0
    assert value(after, "coderoom_db_pool_connections_max") > 0
    assert value(after, "coderoom_auth_cache_lookups_total", result="hit") > 0
    assert "no/such" not in after  # unknown paths never become labels


async def test_rate_limit_refusals_are_counted(sqlite_url: str) -> None:
    settings = make_settings(database_url=sqlite_url, rate_limit_auth="1/day")
    async with running(settings) as c:
        before = (await c.get("/metrics")).text
        for _ in range(3):
            await c.get("/api/v1/auth/login")
        after = (await c.get("/metrics")).text
    name = "coderoom_rate_limit_rejections_total"
    assert value(after, name, limit="auth") - value(before, name, limit="auth") == 2


async def test_a_metrics_token_is_required_once_set(sqlite_url: str) -> None:
    async with running(make_settings(database_url=sqlite_url, metrics_token=TOKEN)) as c:
        missing = await c.get("/metrics")
        wrong = await c.get("/metrics", headers={"Authorization": "Bearer " + "x" * 34})
        right = await c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert TOKEN not in wrong.text
    assert right.status_code == 200
    assert "coderoom_build_info" in right.text


async def test_production_without_a_token_has_no_metrics(postgres_url: str) -> None:
    settings = make_settings(
        environment="production",
        database_url=postgres_url,
        jwt_secret="p" * 48,
        cors_origins="https://app.example",
    )
    async with running(settings) as c:
        response = await c.get("/metrics")
    assert response.status_code == 404


@pytest.mark.server
def test_metrics_add_up_across_server_processes(tmp_path: Path, sqlite_url: str) -> None:
    # Several server processes share the queue: WORKERS > 1 needs Redis.
    server = Server(
        tmp_path,
        sqlite_url,
        WORKERS="2",
        METRICS_TOKEN=TOKEN,
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        wait_until(server.ready)
        before = value(
            httpx.get(f"{server.url}/metrics", headers=auth).text,
            "coderoom_http_requests_total",
            method="GET",
            route="/api/v1/sessions",
            status="401",
        )
        for _ in range(30):
            httpx.get(f"{server.url}/api/v1/sessions")  # a new connection each time
        scrapes = [httpx.get(f"{server.url}/metrics", headers=auth).text for _ in range(6)]
    finally:
        server.stop()
    name = "coderoom_http_requests_total"
    totals = {
        value(text, name, method="GET", route="/api/v1/sessions", status="401") - before
        for text in scrapes
    }
    # Whichever worker answers the scrape, it reports every worker's requests…
    assert totals == {30}
    # …and both workers are in the sums: each adds its pool's 10 + 10 connections.
    assert {value(text, "coderoom_db_pool_connections_max") for text in scrapes} == {40}


@pytest.fixture
def queue_cluster(tmp_path: Path) -> Iterator[tuple[dict[str, str], list[Proc]]]:
    url = create_postgres_database()
    redis = RedisServer(tmp_path)
    procs: list[Proc] = []
    try:
        migrations.upgrade(make_settings(database_url=url))
        yield (
            {
                "DATABASE_URL": url,
                "REDIS_URL": redis.url,
                "METRICS_TOKEN": TOKEN,
                "ARGON2_MEMORY_KIB": "1024",
                "ARGON2_TIME_COST": "1",
            },
            procs,
        )
    finally:
        for proc in procs:
            proc.stop()
        redis.stop()
        drop_postgres_database(url)


@pytest.mark.server
def test_a_worker_serves_its_own_metrics(tmp_path: Path, queue_cluster: tuple) -> None:  # type: ignore[type-arg]
    env, procs = queue_cluster
    port = free_port()
    api = Api("api", tmp_path, env)
    procs.append(api)
    procs.append(Worker("worker", tmp_path, {**env, "WORKER_METRICS_PORT": str(port)}))
    tokens = httpx.post(
        f"{api.url}/auth/register",
        json={"email": f"m-{uuid.uuid4().hex[:8]}@example.com", "password": "metrics-password"},
    ).json()
    ran = httpx.post(
        f"{api.url}/sandbox/executions?wait=true",
        json={"language": "python", "source": "print(1)"},
        headers=bearer(tokens),
        timeout=60,
    ).json()
    assert ran["status"] == "succeeded"
    url = f"http://127.0.0.1:{port}/metrics"
    assert httpx.get(url).status_code == 401
    text = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert value(text, "coderoom_executions_total", language="python", status="succeeded") == 1
    assert value(text, "coderoom_queue_wait_seconds_count") == 1
    api_text = httpx.get(
        f"{api.url.removesuffix('/api/v1')}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    ).text
    assert value(api_text, "coderoom_executions_total", language="python", status="succeeded") == 0
    assert value(api_text, "coderoom_queue_depth") == 0


def test_the_sample_dashboard_only_queries_declared_metrics() -> None:
    import json
    import re

    from coderoom.infra import metrics

    declared = {
        collector._name
        for collector in vars(metrics).values()
        if hasattr(collector, "_name") and hasattr(collector, "_type")
    }
    dashboard = (Path(__file__).resolve().parent.parent / "docs/grafana-dashboard.json").read_text()
    queried = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for panel in json.loads(dashboard)["panels"]
        for target in panel["targets"]
        for name in re.findall(r"coderoom_[a-z_]+", target["expr"])
    }
    assert queried
    assert queried <= {re.sub(r"_total$", "", name) for name in declared}, queried - declared
