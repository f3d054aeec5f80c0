"""The rate-limit middleware: every request counts against each limiter whose rule covers it.

Rules match on method and path, not on routes, so `GET /auth/login` (a 405) still counts
against the auth limiter and a scanner cannot probe for free. Health routes and the API
docs page's static assets are never limited. Responses carry `RateLimit-Limit/Remaining/
Reset` for the tightest limiter that applied; a refusal is a 429 problem naming the limit,
with `Retry-After`.

Who a limit counts against:
- per client IP: `api`, `auth`, `session`;
- per signed-in user: `execution`. The access token's signature is checked here (no
  database), so a request without valid credentials is refused by the route (401) without
  spending anyone's execution budget, and people behind one NAT do not share it;
- per API key: `api_key` replaces `api` and `execution` for requests made with a key. A key
  this process has not verified recently is first charged to the client IP's `api` budget
  and only then looked up, so guessing keys costs what any request costs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coderoom.api.problems import error_response
from coderoom.auth import apikeys
from coderoom.auth.errors import InvalidToken
from coderoom.auth.principal import KeyGrant
from coderoom.auth.service import AuthConfig
from coderoom.config import Settings
from coderoom.core.errors import RateLimitError, ServiceUnavailableError
from coderoom.core.net import rate_limit_key
from coderoom.infra import metrics
from coderoom.infra.db import session_scope
from coderoom.infra.ratelimit import Decision, Quota, RateLimiter, RateLimiterUnavailable

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Rule:
    quota: Quota
    path: re.Pattern[str]
    methods: frozenset[str] | None = None  # None: every method
    per: Literal["ip", "user"] = "ip"
    replaced_by_key: bool = False  # an API key's own limit applies instead

    def covers(self, method: str, path: str) -> bool:
        return (self.methods is None or method in self.methods) and bool(self.path.fullmatch(path))


def rules_from_settings(settings: Settings, prefix: str) -> list[Rule]:
    p = re.escape(prefix)
    post = frozenset({"POST"})
    return [
        Rule(
            Quota.parse("api", settings.rate_limit_api),
            re.compile(rf"{p}(?!/health(?:/|$))(?!/docs/assets/).*"),
            replaced_by_key=True,
        ),
        Rule(
            Quota.parse("auth", settings.rate_limit_auth),
            re.compile(rf"{p}/auth/(?:login|register)/?"),
        ),
        Rule(
            Quota.parse("execution", settings.rate_limit_execution),
            re.compile(rf"{p}/(?:sandbox/executions|sessions/[^/]+/run)/?"),
            post,
            per="user",
            replaced_by_key=True,
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


def _bearer(scope: Scope) -> str | None:
    value = Headers(scope=scope).get("authorization", "")
    scheme, _, token = value.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


class RateLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, rules: Sequence[Rule], api_key_quota: Quota, fail_closed: bool
    ) -> None:
        self.app = app
        self.rules = list(rules)
        self.api_key_quota = api_key_quota
        self.fail_closed = fail_closed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        # A WebSocket upgrade is a GET and counts like one (it is refused with a 429 denial).
        method, path = scope.get("method", "GET"), scope["path"]
        applicable = [rule for rule in self.rules if rule.covers(method, path)]
        if not applicable:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state.coderoom
        limiter: RateLimiter = state.rate_limiter
        config: AuthConfig = state.auth
        ip = rate_limit_key(scope["state"]["client_ip"])
        token = _bearer(scope)
        try:
            if token is not None and apikeys.is_api_key(token):
                decisions = await self._key_decisions(scope, limiter, config, applicable, ip, token)
            else:
                user_id = self._verified_user(scope, config, token)
                hits = [
                    (rule.quota, ip if rule.per == "ip" else f"user:{user_id}")
                    for rule in applicable
                    if rule.per == "ip" or user_id is not None
                ]
                decisions = await self._hit(limiter, hits)
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
            await self._refuse(scope, receive, send, refused)
            return
        if not decisions:
            await self.app(scope, receive, send)
            return
        tightest = min(decisions, key=lambda d: (d.remaining, -d.reset_after))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _headers(tightest).items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _hit(limiter: RateLimiter, hits: list[tuple[Quota, str]]) -> list[Decision]:
        return await limiter.hit_all(hits)  # one round trip, whatever the number of rules

    @staticmethod
    def _verified_user(scope: Scope, config: AuthConfig, token: str | None) -> str | None:
        """The user id of a correctly signed, unexpired access token; kept for the route."""
        if token is None:
            return None
        try:
            claims = config.tokens.decode_access(token)
        except InvalidToken:
            return None
        scope["state"]["access_claims"] = claims
        return str(claims.user_id)

    async def _key_decisions(
        self,
        scope: Scope,
        limiter: RateLimiter,
        config: AuthConfig,
        applicable: list[Rule],
        ip: str,
        key: str,
    ) -> list[Decision]:
        others = [(r.quota, ip) for r in applicable if not r.replaced_by_key and r.per == "ip"]
        grant = apikeys.cached_grant(config, key)
        if grant is not None:
            return await self._hit(limiter, [(self.api_key_quota, f"key:{grant.key_id}"), *others])
        replaced = [(r.quota, ip) for r in applicable if r.replaced_by_key and r.per == "ip"]
        first = await self._hit(limiter, [*replaced, *others])
        if not all(d.allowed for d in first):
            return first
        grant = await self._lookup(scope, config, key)
        if grant is None:
            return first  # the route answers 401
        return [*first, *await self._hit(limiter, [(self.api_key_quota, f"key:{grant.key_id}")])]

    @staticmethod
    async def _lookup(scope: Scope, config: AuthConfig, key: str) -> KeyGrant | None:
        try:
            async with session_scope(scope["app"].state.coderoom.sessionmaker) as db:
                grant, _owner = await apikeys.resolve(db, config=config, key=key)
        except InvalidToken:
            return None
        except Exception as exc:  # noqa: BLE001 - the route reports the outage itself
            log.error("ratelimit.key_lookup_failed", error=type(exc).__name__)
            return None
        return grant

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, refused: list[Decision]) -> None:
        worst = max(refused, key=lambda d: d.reset_after)
        metrics.RATE_LIMIT_REJECTIONS.labels(limit=worst.quota.name).inc()
        refusal = RateLimitError(
            f"Rate limit '{worst.quota.name}' exceeded: {worst.quota.describe()}. "
            f"Retry in {worst.reset_after} s.",
            headers={**_headers(worst), "Retry-After": str(worst.reset_after)},
            extra={"limit": worst.quota.name},
        )
        await error_response(scope, refusal)(scope, receive, send)
