"""`coderoom doctor`: check an installation and say what is missing, with the fix.

The sandbox checks are the engine's own (`Engine.check()` for bubblewrap, seccomp, user
namespaces and the sandbox user; `Engine.cgroups` for cgroups and their delegation), so the
doctor can never disagree with what the server will do. Exit 0 when nothing failed (warnings
allowed), 1 otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal

import structlog
import typer
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from coderoom import migrations
from coderoom.config import Settings, describe_errors
from coderoom.infra.db import create_engine, ping
from coderoom.infra.logging import configure_logging
from coderoom.infra.startup import describe_database, describe_redis
from coderoom.sandbox import Engine, LanguageRegistry, SandboxUnavailable
from coderoom.sandbox.languages import shipped_specs

Outcome = Literal["ok", "warn", "FAIL"]


@dataclass(frozen=True)
class Finding:
    outcome: Outcome
    what: str
    detail: str
    fix: str | None = None


def _sandbox(engine: Engine) -> list[Finding]:
    try:
        engine.check()
    except SandboxUnavailable as exc:
        return [Finding("FAIL", "sandbox", str(exc), "see docs/SANDBOX.md and docs/DEPLOYMENT.md")]
    findings = [Finding("ok", "sandbox", "bubblewrap, seccomp and namespaces work")]
    with structlog.testing.capture_logs() as events:
        manager = engine.cgroups
    if manager is not None:
        findings.append(Finding("ok", "cgroups", f"cgroup v{manager.version}, delegated"))
    else:
        reason = next(
            (str(e.get("reason")) for e in events if e["event"] == "sandbox.cgroups_unavailable"),
            "not usable here",
        )
        findings.append(
            Finding(
                "warn",
                "cgroups",
                f"{reason}; runs fall back to rlimits (no JVM/V8 memory limits, no peak memory)",
                "run as root, or give the service a delegated cgroup (systemd: Delegate=yes)",
            )
        )
    return findings


def _runtimes(registry: LanguageRegistry) -> list[Finding]:
    findings = []
    for spec in shipped_specs():
        language = registry.get(spec.id)
        if language is not None:
            findings.append(Finding("ok", f"runtime {spec.id}", f"{spec.name} {language.version}"))
        else:
            findings.append(
                Finding(
                    "warn",
                    f"runtime {spec.id}",
                    f"{spec.name} is not installed; the language is not offered",
                    f"coderoom runtimes install {spec.id}",
                )
            )
    if len(registry) == 0:
        findings.append(
            Finding("FAIL", "runtimes", "no language can run", "apt-get install python3")
        )
    return findings


async def _database(settings: Settings) -> Finding:
    where = describe_database(settings.sqlalchemy_url)
    engine = create_engine(settings)
    try:
        async with asyncio.timeout(10):
            await ping(engine)
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        return Finding(
            "FAIL",
            "database",
            f"{where}: {type(exc).__name__}: {' '.join(str(exc).split())}",
            "check DATABASE_URL and that the server is up",
        )
    finally:
        await engine.dispose()
    problem = await migrations.schema_problem(settings)
    if problem is not None:
        return Finding("FAIL", "database schema", f"{where}: {problem}", "coderoom migrate")
    return Finding("ok", "database", f"{where}, schema up to date")


async def _redis(settings: Settings) -> Finding:
    if settings.redis_url is None:
        return Finding("ok", "redis", "not configured: embedded queue and rate limits")
    where = describe_redis(settings.redis_url)
    client = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        return Finding("FAIL", "redis", f"{where}: {exc}", "check REDIS_URL and that Redis is up")
    finally:
        await client.aclose()
    return Finding("ok", "redis", f"{where}, prefix {settings.resolved_redis_prefix!r}")


def _print(finding: Finding) -> None:
    typer.echo(f"{finding.outcome:<5} {finding.what:<18} {finding.detail}")
    if finding.fix and finding.outcome != "ok":
        typer.echo(f"{'':<24}fix: {finding.fix}")


def doctor() -> None:
    """Check this installation: settings, sandbox, cgroups, runtimes, database, Redis."""
    configure_logging("ERROR", "console")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = Settings()
    except ValidationError as exc:
        for line in describe_errors(exc):
            _print(Finding("FAIL", "configuration", line, "fix the variable (see env.example)"))
        raise typer.Exit(1) from None
    findings = [Finding("ok", "configuration", f"environment {settings.environment.value}")]
    registry = LanguageRegistry.detect()
    findings += _sandbox(Engine(registry=registry))
    findings += _runtimes(registry)

    async def services() -> list[Finding]:
        return [await _database(settings), await _redis(settings)]

    findings += asyncio.run(services())
    for finding in findings:
        _print(finding)
    failed = sum(f.outcome == "FAIL" for f in findings)
    typer.echo(f"{failed} problem(s) found" if failed else "everything needed is in place")
    raise typer.Exit(1 if failed else 0)
