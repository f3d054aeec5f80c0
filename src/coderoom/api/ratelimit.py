"""The rate-limit middleware: every request counts against each limiter whose rule covers it.

Rules match on method and path, not on routes, so `GET /auth/login` (a 405) still counts
against the auth limiter and a scanner cannot probe for free. Health routes are never
limited. Responses carry `RateLimit-Limit/Remaining/Reset` for the tightest limiter that
applied; a refusal is a 429 problem naming the limit, with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coderoom.api.problems import error_response
from coderoom.config import Settings
from coderoom.core.errors import RateLimitError, ServiceUnavailableError
from coderoom.core.net import rate_limit_key
from coderoom.infra.ratelimit import Decision, Quota, RateLimiter, RateLimiterUnavailable

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Rule:
    quota: Quota
    path: re.Pattern[str]
    methods: frozenset[str] | None = None  # None: every method

    def covers(self, method: str, path: str) -> bool:
        return (self.methods is None or method in self.methods) and bool(self.path.fullmatch(path))


def rules_from_settings(settings: Settings, prefix: str) -> list[Rule]:
    p = re.escape(prefix)
    post = frozenset({"POST"})
    return [
        Rule(
            Quota.parse("api", settings.rate_limit_api),
            re.compile(rf"{p}(?!/health(?:/|$)).*"),
        ),
        Rule(
            Quota.parse("auth", settings.rate_limit_auth),
            re.compile(rf"{p}/auth/(?:login|register)/?"),
        ),
        Rule(
            Quota.parse("execution", settings.rate_limit_execution),
            re.compile(rf"{p}/(?:sandbox/executions|sessions/[^/]+/run)/?"),
            post,
        ),
        Rule(
            Quota.parse("session", settings.rate_limit_session),
            re.compile(rf"{p}/sessions/?"),
            post,
        ),
    ]


def _headers(decision: Decision) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(decision.quota.amount),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_after),
    }


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, rules: Sequence[Rule], fail_closed: bool) -> None:
        self.app = app
        self.rules = list(rules)
        self.fail_closed = fail_closed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        applicable = [rule for rule in self.rules if rule.covers(method, path)]
        if not applicable:
            await self.app(scope, receive, send)
            return
        limiter: RateLimiter = scope["app"].state.coderoom.rate_limiter
        key = rate_limit_key(scope["state"]["client_ip"])
        try:
            decisions = await asyncio.gather(*(limiter.hit(rule.quota, key) for rule in applicable))
        except RateLimiterUnavailable as exc:
            log.error("ratelimit.unavailable", error=str(exc), fail_closed=self.fail_closed)
            if self.fail_closed:
                error = ServiceUnavailableError(
                    "Rate limiting is unavailable; try again shortly.", headers={"Retry-After": "5"}
                )
                await error_response(scope, error)(scope, receive, send)
                return
            await self.app(scope, receive, send)  # fail open: availability over throttling
            return

        refused = [d for d in decisions if not d.allowed]
        if refused:
            worst = max(refused, key=lambda d: d.reset_after)
            refusal = RateLimitError(
                f"Rate limit '{worst.quota.name}' exceeded: {worst.quota.describe()}. "
                f"Retry in {worst.reset_after} s.",
                headers={**_headers(worst), "Retry-After": str(worst.reset_after)},
                extra={"limit": worst.quota.name},
            )
            await error_response(scope, refusal)(scope, receive, send)
            return

        tightest = min(decisions, key=lambda d: (d.remaining, -d.reset_after))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _headers(tightest).items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
