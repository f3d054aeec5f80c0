"""Prometheus metrics: the one place where every coderoom metric is declared.

Adding a metric (WebSockets, SSE, a new backend…): declare it below, with a name
`coderoom_<what>_<unit>`, a help text, and labels whose values are bounded (a route template,
a language id, a status; never an id, an email or a path with ids in it). Import
`coderoom.infra.metrics` where the thing happens and call `.inc()`, `.observe()`, `.set()`.
A gauge needs a `multiprocess_mode` saying how the values of several server processes
combine (`livesum` for "how many now", `mostrecent` for a value measured at scrape time).
Declare label values you know up front with `.labels(...)`, so the series exist at 0 before
the first event and dashboards and alerts see them. Then list it in docs/DEPLOYMENT.md
("Metrics").

Several processes: with `coderoom serve --workers N` (N > 1) every uvicorn worker writes its
values to files in `PROMETHEUS_MULTIPROC_DIR`, which `coderoom serve` sets to a fresh
directory before the workers start, and `GET /metrics` (served by any worker) adds them up
(prometheus-client's multiprocess mode). One process: the default registry, no files.
"""

from __future__ import annotations

import hmac
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from coderoom import __version__

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_RUN = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# -- HTTP (api/metrics.py) ---------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "coderoom_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "coderoom_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=_LATENCY,
)
RATE_LIMIT_REJECTIONS = Counter(
    "coderoom_rate_limit_rejections_total",
    "Requests refused with 429, by the limit that refused them.",
    ["limit"],
)
for _limit in ("api", "auth", "execution", "session", "api_key"):
    RATE_LIMIT_REJECTIONS.labels(limit=_limit)

# -- Executions (executions/jobs.py, api/metrics.py) --------------------------------------
EXECUTIONS = Counter(
    "coderoom_executions_total",
    "Executions that ended, by language and final status.",
    ["language", "status"],
)
QUEUE_DEPTH = Gauge(
    "coderoom_queue_depth",
    "Executions waiting for a sandbox, measured when scraped.",
    multiprocess_mode="mostrecent",
)
QUEUE_WAIT = Histogram(
    "coderoom_queue_wait_seconds",
    "Time from accepting an execution to starting it.",
    buckets=_RUN,
)
SANDBOX_PHASE = Histogram(
    "coderoom_sandbox_phase_seconds",
    "Time spent in the sandbox by phase: 'run' is the program's own wall time, "
    "'overhead' the rest (set-up, compiling, clean-up), 'total' both.",
    ["phase"],
    buckets=_RUN,
)
for _phase in ("total", "run", "overhead"):
    SANDBOX_PHASE.labels(phase=_phase)

# -- Live collaboration (live/hub.py for websocket; SSE when it lands) ---------------------
LIVE_SESSIONS = Gauge(
    "coderoom_live_sessions",
    "Coding sessions with at least one live connection.",
    multiprocess_mode="livesum",
)
LIVE_CONNECTIONS = Gauge(
    "coderoom_live_connections",
    "Open live connections, by kind (websocket, sse).",
    ["kind"],
    multiprocess_mode="livesum",
)
for _kind in ("websocket", "sse"):
    LIVE_CONNECTIONS.labels(kind=_kind)

# -- Database pool (instrument_pool) ------------------------------------------------------
DB_POOL_IN_USE = Gauge(
    "coderoom_db_pool_connections_in_use",
    "Database connections checked out of the pool now.",
    multiprocess_mode="livesum",
)
DB_POOL_CAPACITY = Gauge(
    "coderoom_db_pool_connections_max",
    "Most database connections the pool may open (pool size + overflow).",
    multiprocess_mode="livesum",
)

# -- Authentication (auth/service.py) -----------------------------------------------------
AUTH_CACHE = Counter(
    "coderoom_auth_cache_lookups_total",
    "Principal cache lookups on the request path, by result (hit, miss).",
    ["result"],
)
for _result in ("hit", "miss"):
    AUTH_CACHE.labels(result=_result)

BUILD_INFO = Gauge(
    "coderoom_build_info",
    "Always 1; the version label says which coderoom is running.",
    ["version"],
    multiprocess_mode="max",
)
BUILD_INFO.labels(version=__version__).set(1)


def observe_run(language: str, status: str, total_seconds: float, run_wall_ms: int | None) -> None:
    """One finished sandbox run: its verdict, and where its time went."""
    EXECUTIONS.labels(language=language, status=status).inc()
    SANDBOX_PHASE.labels(phase="total").observe(total_seconds)
    if run_wall_ms is not None:
        run = min(run_wall_ms / 1000, total_seconds)
        SANDBOX_PHASE.labels(phase="run").observe(run)
        SANDBOX_PHASE.labels(phase="overhead").observe(total_seconds - run)


def instrument_pool(engine: AsyncEngine, *, capacity: int) -> None:
    """Count checkouts and checkins of `engine`'s pool (cheap: a gauge step each)."""
    DB_POOL_CAPACITY.inc(capacity)
    pool = engine.sync_engine.pool
    event.listen(pool, "checkout", lambda *_: DB_POOL_IN_USE.inc())
    event.listen(pool, "checkin", lambda *_: DB_POOL_IN_USE.dec())


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def render() -> bytes:
    """Every metric in the Prometheus text format, summed over processes when there are
    several."""
    if multiprocess_dir() is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def process_exited() -> None:
    """Drop this process's live gauges from the sums (multiprocess mode only)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def authorized(authorization: str | None, *, token: str | None, open_access: bool) -> bool:
    """Whether a scrape may read the metrics: `Authorization: Bearer <METRICS_TOKEN>`,
    compared in constant time, or nothing at all when metrics are open (development)."""
    if open_access:
        return True
    if token is None or authorization is None:
        return False
    scheme, _, presented = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), token.encode()
    )
