"""The one Settings class: every knob the service has, read from the environment and `.env`.

Names are part of the operator interface (see env.example); rename nothing without a
deprecation path. Production refuses unsafe values at start-up, every one of them at once,
one line per variable, so a misconfigured deployment never comes up half-safe and never
takes three restarts to fix.

The production refusals are field validators that read `environment` (declared first, so
it is already validated when they run) rather than one model validator: pydantic runs a
model validator only when every field is valid, which would hide them behind any other
mistake.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from limits import parse as parse_rate_limit
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

#: Shipped so development works out of the box; refused in production.
DEV_JWT_SECRET = "coderoom-development-secret-do-not-use-in-production"  # noqa: S105
MIN_JWT_SECRET_BYTES = 32
MIN_METRICS_TOKEN_CHARS = 16
#: Browser origins allowed by default: a local front-end in development. Refused in production.
DEV_CORS_ORIGINS = ("http://localhost:3000", "http://localhost:4000")
_REDIS_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Registration(StrEnum):
    OPEN = "open"
    INVITE_ONLY = "invite-only"
    CLOSED = "closed"


class DatabaseSSL(StrEnum):
    DISABLE = "disable"
    REQUIRE = "require"
    VERIFY_FULL = "verify-full"


# Helmet's default policy: a sound baseline for an API that also serves its own pages.
DEFAULT_CSP = (
    "default-src 'self';base-uri 'self';font-src 'self' https: data:;"
    "form-action 'self';frame-ancestors 'self';img-src 'self' data:;"
    "object-src 'none';script-src 'self';script-src-attr 'none';"
    "style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests"
)


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def normalize_database_url(raw: str) -> tuple[URL, DatabaseSSL | None]:
    """Turn the URL forms people paste into the async SQLAlchemy URL we run on.

    `postgres://` and `postgresql://` become `postgresql+asyncpg://`, `sqlite://` becomes
    `sqlite+aiosqlite://`. asyncpg does not understand libpq's `?sslmode=`, so it is taken out
    of the query and returned as the SSL mode it asks for.
    """
    url = make_url(raw)
    backend = url.get_backend_name()
    if backend in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    else:
        raise ValueError(f"unsupported database {backend!r}: use PostgreSQL or SQLite")
    ssl: DatabaseSSL | None = None
    sslmode = url.query.get("sslmode")
    if isinstance(sslmode, str):
        url = url.difference_update_query(["sslmode"])
        if sslmode in ("disable", "allow", "prefer"):
            ssl = DatabaseSSL.DISABLE
        elif sslmode == "require":
            ssl = DatabaseSSL.REQUIRE
        elif sslmode in ("verify-ca", "verify-full"):
            ssl = DatabaseSSL.VERIFY_FULL
        else:
            raise ValueError(f"unknown sslmode {sslmode!r}")
    return url, ssl


def _production(info: ValidationInfo) -> bool:
    return info.data.get("environment") is Environment.PRODUCTION


def default_redis_prefix(database_url: str) -> str:
    """The database's name (PostgreSQL) or file stem (SQLite), else `coderoom`.

    Two deployments sharing a Redis almost always have different databases, and so do a
    deployment and its test suite: deriving the prefix from the database keeps their queues,
    rate limits and channels apart without anyone having to think of it.
    """
    try:
        url, _ = normalize_database_url(database_url)
    except ValueError:
        return "coderoom"
    name = url.database or ""
    if url.get_backend_name() == "sqlite":
        name = "" if name in ("", ":memory:") else Path(name).stem
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", name).strip("-.")[:64]
    return cleaned if cleaned and _REDIS_PREFIX.fullmatch(cleaned) else "coderoom"


class Settings(BaseSettings):
    """Validated configuration. Every field maps to the upper-case variable of its name."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    environment: Environment = Environment.DEVELOPMENT
    # Empty: 127.0.0.1 in development and test (nobody on the LAN reaches a laptop's open
    # sign-up), 0.0.0.0 in production, where the operator put a proxy or firewall in front.
    host: str = Field(default="", validate_default=True)
    port: int = Field(default=4000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)

    database_url: str = Field(
        default="sqlite+aiosqlite:///./coderoom.sqlite3", validate_default=True
    )
    database_ssl: DatabaseSSL | None = None
    database_ssl_ca_file: Path | None = None
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    database_pool_recycle_seconds: int = Field(default=1800, ge=1)
    database_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    database_connect_attempts: int = Field(default=5, ge=1)
    database_connect_interval_seconds: float = Field(default=2.0, ge=0)

    redis_url: str | None = None
    # Every Redis key, queue and channel name starts with this (see infra/keys.py).
    redis_prefix: str | None = None
    # Per client (API: queue, and the rate limiter's own; worker: queue). Requests wait up to
    # REDIS_POOL_TIMEOUT_SECONDS for a free connection instead of opening more.
    redis_max_connections: int = Field(default=32, ge=4, le=1000)
    redis_pool_timeout_seconds: float = Field(default=5.0, gt=0)

    jwt_secret: str = Field(default=DEV_JWT_SECRET, validate_default=True)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    access_token_ttl_seconds: int = Field(default=15 * 60, ge=30, le=24 * 3600)
    refresh_token_ttl_seconds: int = Field(default=14 * 24 * 3600, ge=60)
    # OWASP's Argon2id profile: m=19 MiB, t=2, p=1.
    argon2_memory_kib: int = Field(default=19 * 1024, ge=1024)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_parallelism: int = Field(default=1, ge=1)
    login_failure_limit: str = "10/15minutes"
    # Who may create an account: anyone, holders of an admin's sign-up invite, or nobody
    # (accounts then come from `coderoom users create`).
    registration: Registration = Registration.OPEN
    # How long a verified user or API key is trusted without asking the database again.
    # Disabling or revoking evicts it at once (in every process, through Redis); this is
    # the bound when that message cannot arrive. 0: look up on every request.
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=60)

    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEV_CORS_ORIGINS), validate_default=True
    )
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = Field(default_factory=list)
    content_security_policy: str = DEFAULT_CSP
    # Where people reach this service (`https://code.example.com`): invite links start with
    # it. Unset: derived from each request's scheme and Host (X-Forwarded-Proto/-Host only
    # from TRUSTED_PROXIES).
    public_url: str | None = None
    # The built web app (`npm run build` in web/); unset: web/dist of this checkout.
    web_dist_dir: Path | None = None

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "console"] | None = None

    sentry_dsn: str | None = None
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0, le=1)
    sentry_profiles_sample_rate: float = Field(default=0.0, ge=0, le=1)
    sentry_send_pii: bool = False

    # GET /metrics (API) and the workers' metrics listener. Unset: open in development and
    # test, off (404) in production. Set: `Authorization: Bearer <token>` required.
    metrics_token: str | None = None
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535)  # 0: no listener

    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    health_probe_timeout_seconds: float = Field(default=2.0, gt=0)

    execution_concurrency: int | None = Field(default=None, ge=1, le=256)
    execution_wait_seconds: float = Field(default=30.0, gt=0, le=300)
    execution_max_active_per_user: int = Field(default=4, ge=1)
    execution_max_source_bytes: int = Field(default=256 * 1024, ge=1024)

    # Live sessions (docs/API.md "Live editing"): caps per file, per document, per message,
    # per connection's update rate, and on connections per user and per session.
    live_max_file_bytes: int = Field(default=256 * 1024, ge=1024)
    live_max_document_bytes: int = Field(default=1024 * 1024, ge=1024)
    live_max_message_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    live_updates_per_second: float = Field(default=50.0, gt=0)
    live_update_burst: int = Field(default=200, ge=1)
    live_max_connections_per_user: int = Field(default=16, ge=1)
    live_max_connections_per_session: int = Field(default=64, ge=1)
    live_idle_seconds: float = Field(default=30.0, gt=0)
    live_compact_every: int = Field(default=500, ge=2)

    # Live executions (docs/API.md "Live executions"): each run's events are kept in a
    # bounded log (a Redis Stream with REDIS_URL) for a while after the run ends.
    stream_max_entries: int = Field(default=4096, ge=16, le=1_000_000)
    stream_retain_seconds: int = Field(default=600, ge=1)
    # An SSE or WebSocket connection ends after this long in all, or after the idle time
    # without an event or a client message (keep-alives do not count); the client may
    # reconnect (SSE with Last-Event-ID).
    stream_max_connection_seconds: float = Field(default=3600.0, gt=0)
    stream_idle_seconds: float = Field(default=300.0, gt=0)
    stream_keepalive_seconds: float = Field(default=15.0, gt=0)
    # Live connections (SSE and WebSocket) one user may hold open at once, per API process.
    stream_max_connections_per_user: int = Field(default=16, ge=1)

    # When the service runs as root, each run slot of each process executes as its own
    # unprivileged host uid from [SANDBOX_UID_BASE, +SANDBOX_UID_COUNT), claimed host-wide
    # (no passwd entry needed). Pick a range nothing else uses.
    sandbox_uid_base: int = Field(default=2_000_000_000, ge=1000, le=2**31 - 2)
    sandbox_uid_count: int = Field(default=65_536, ge=1, le=2**24)

    # Offer only these language ids (comma-separated; empty: every installed language), and
    # read more languages, or changes to shipped ones, from a TOML file (docs/LANGUAGES.md).
    languages: Annotated[list[str] | None, NoDecode] = None
    languages_file: Path | None = None

    queue_max_depth: int = Field(default=1000, ge=1)
    worker_concurrency: int | None = Field(default=None, ge=1, le=256)
    worker_heartbeat_seconds: int = Field(default=5, ge=1)
    worker_sweep_seconds: int = Field(default=5, ge=1)
    worker_reconcile_seconds: float = Field(default=10.0, gt=0)
    run_worker: bool = False  # `serve --with-worker`: a worker inside the API process

    rate_limit_enabled: bool = Field(default=True, validate_default=True)
    rate_limit_api: str = "100/15minutes"
    rate_limit_auth: str = "5/15minutes"
    rate_limit_execution: str = "10/minute"
    rate_limit_session: str = "20/hour"
    rate_limit_api_key: str = "120/minute"
    rate_limit_fail_closed: bool = False

    @field_validator(
        "rate_limit_api",
        "rate_limit_auth",
        "rate_limit_execution",
        "rate_limit_session",
        "rate_limit_api_key",
        "login_failure_limit",
    )
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        try:
            parse_rate_limit(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit: write N/unit, e.g. 100/15minutes or 10/minute"
            ) from None
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if _production(info):
            if "*" in value:
                raise ValueError("must list origins in production: '*' with credentials")
            if tuple(value) == DEV_CORS_ORIGINS:
                raise ValueError(
                    "must be set in production to your site's origins "
                    "(the default allows only localhost)"
                )
        return value

    @field_validator("host")
    @classmethod
    def _default_host(cls, value: str, info: ValidationInfo) -> str:
        if value:
            return value
        return "0.0.0.0" if _production(info) else "127.0.0.1"  # noqa: S104

    @field_validator("jwt_secret")
    @classmethod
    def _check_secret(cls, value: str, info: ValidationInfo) -> str:
        if _production(info):
            if not value or value == DEV_JWT_SECRET:
                raise ValueError("must be set to your own secret in production")
            if len(value.encode()) < MIN_JWT_SECRET_BYTES:
                raise ValueError(f"must be at least {MIN_JWT_SECRET_BYTES} bytes")
        return value

    @field_validator("rate_limit_enabled")
    @classmethod
    def _check_rate_limiting(cls, value: bool, info: ValidationInfo) -> bool:
        if _production(info) and not value:
            raise ValueError("false is refused in production")
        return value

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("metrics_token")
    @classmethod
    def _check_metrics_token(cls, value: str | None) -> str | None:
        if value is not None and len(value) < MIN_METRICS_TOKEN_CHARS:
            raise ValueError(f"must be at least {MIN_METRICS_TOKEN_CHARS} characters")
        return value

    @field_validator("redis_prefix", mode="before")
    @classmethod
    def _empty_prefix_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("redis_prefix")
    @classmethod
    def _check_redis_prefix(cls, value: str | None) -> str | None:
        if value is not None and not _REDIS_PREFIX.fullmatch(value):
            raise ValueError(
                "must be 1-64 of letters, digits, '_', '.', '-', starting with a letter or digit"
            )
        return value

    @field_validator("database_max_overflow")
    @classmethod
    def _check_pool(cls, value: int, info: ValidationInfo) -> int:
        size = info.data.get("database_pool_size")
        if isinstance(size, int) and size + value > 20:
            raise ValueError(
                "DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW must not exceed 20 connections"
            )
        return value

    @field_validator("languages", mode="before")
    @classmethod
    def _parse_languages(cls, value: object) -> object:
        value = _split_csv(value)
        return value or None

    @field_validator("languages_file", mode="before")
    @classmethod
    def _empty_file_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("languages_file")
    @classmethod
    def _check_languages_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable file")
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        match = re.fullmatch(
            r"(https?)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?", value.strip()
        )
        if match is None:
            raise ValueError("must be an origin like https://code.example.com (no path)")
        return value.strip().rstrip("/")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: object) -> object:
        value = _split_csv(value)
        if isinstance(value, list):
            return [ipaddress.ip_network(str(item), strict=False) for item in value]
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str, info: ValidationInfo) -> str:
        url, _ = normalize_database_url(value)
        if _production(info) and url.get_backend_name() == "sqlite":
            raise ValueError("must point at PostgreSQL in production, not SQLite")
        return value

    @field_validator("redis_url", "sentry_dsn", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("REDIS_URL must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        problem = process_layout_problem(self.workers, self.redis_url)
        if problem:
            raise ValueError(problem)
        if self.resolved_database_ssl is DatabaseSSL.VERIFY_FULL and not (
            self.database_ssl_ca_file and self.database_ssl_ca_file.is_file()
        ):
            raise ValueError("DATABASE_SSL_CA_FILE must name a readable CA file for verify-full")
        return self

    @cached_property
    def _normalized_db(self) -> tuple[URL, DatabaseSSL | None]:
        return normalize_database_url(self.database_url)

    @property
    def sqlalchemy_url(self) -> URL:
        return self._normalized_db[0]

    @property
    def resolved_database_ssl(self) -> DatabaseSSL:
        """DATABASE_SSL wins; else what the URL's sslmode asked for; else off."""
        return self.database_ssl or self._normalized_db[1] or DatabaseSSL.DISABLE

    @property
    def language_files(self) -> tuple[Path, ...]:
        """Language data files to read after the shipped one."""
        return (self.languages_file,) if self.languages_file is not None else ()

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.get_backend_name() == "sqlite"

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def resolved_redis_prefix(self) -> str:
        return self.redis_prefix or default_redis_prefix(self.database_url)

    @property
    def metrics_open(self) -> bool:
        """Metrics answer without a token only outside production, and only with none set."""
        return self.metrics_token is None and not self.is_production

    @property
    def resolved_log_format(self) -> Literal["json", "console"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.is_production else "console"


def process_layout_problem(workers: int, redis_url: str | None) -> str | None:
    """Why this many server processes cannot share the work, if they cannot.

    Without Redis each process runs executions on its own embedded pool, and at start-up
    takes over every execution the database shows running: with several processes, one
    would re-run its siblings' executions while they are still running.
    """
    if workers > 1 and redis_url is None:
        return (
            "WORKERS > 1 needs REDIS_URL: without the shared queue each process would "
            "re-run the others' executions"
        )
    return None


def describe_errors(error: ValidationError) -> list[str]:
    """One line per problem an operator can act on: the variable and what is wrong with it."""
    lines = []
    for item in error.errors():
        name = "_".join(str(p) for p in item["loc"]).upper()
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{name}: {message}" if name else message)
    return lines


def describe_error(error: ValidationError) -> str:
    """Every problem on one line (for log events; the command line prints one per line)."""
    return "invalid configuration: " + "; ".join(describe_errors(error))
