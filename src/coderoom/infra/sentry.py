"""Error monitoring with Sentry: what is sent, and everything that is scrubbed first.

Off (sentry-sdk never initialised, zero overhead) unless `SENTRY_DSN` is set. Events come
from error-level log lines (the logging integration turns `log.error`/`log.exception`/
`log.critical` into events and earlier INFO lines into breadcrumbs), so one place decides
what is an incident: unhandled exceptions, 5xx answers, sandbox and runner failures,
rate-limit storage outages, start-up failures. 4xx answers are not logged as errors and so
send nothing.

Scrubbing happens in `before_send`/`before_breadcrumb`, before anything leaves the process:
- no request bodies (`max_request_body_size="never"`), no local variables;
- sentry-sdk's EventScrubber, recursive, with its denylist extended by our names;
- our own recursive pass: any key whose name *contains* a secret-looking word (password,
  secret, token, key, dsn, credential, authorization, cookie…) is replaced, as are program
  source, stdin and arguments; credentials inside URLs and secret-looking query
  parameters are filtered; values that look like our JWTs are filtered wherever they are.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode

import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

from coderoom import __version__
from coderoom.config import Settings

FILTERED = "[Filtered]"
SECRET_WORDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "key",
    "dsn",
    "credential",
    "authorization",
    "cookie",
    "signature",
    "jwt",
    "database_url",
    "redis_url",
)
CODE_KEYS = frozenset({"source", "stdin", "args", "files", "content", "compile_output"})
EXTRA_DENYLIST = [
    "access_token",
    "refresh_token",
    "invite_token",
    "jwt_secret",
    "sentry_dsn",
    "database_url",
    "redis_url",
    "x-api-key",
    "set-cookie",
    *CODE_KEYS,
]
# Bounded repetitions: an unbounded scheme made this quadratic on long text without "://"
# (a 1 MB log value took minutes), and it runs on every log line.
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]{0,31}://)[^/\s:@]{0,256}(:[^/\s@]{0,256})?@"
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
# API keys (crk_), WebSocket tickets (wst_, also inside the coderoom.ticket. subprotocol) and
# whatever follows "Bearer" (a refresh token has no recognisable shape of its own).
_PREFIXED_SECRET = re.compile(r"\b(?:crk|wst)_[A-Za-z0-9_-]{8,}")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s,;\"']+")


def secret_name(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    return lowered in CODE_KEYS or any(word in lowered for word in SECRET_WORDS)


def scrub_text(text: str) -> str:
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{FILTERED}@", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {FILTERED}", text)
    text = _PREFIXED_SECRET.sub(FILTERED, text)
    return _JWT.sub(FILTERED, text)


def scrub_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, FILTERED if secret_name(k) else scrub_text(v)) for k, v in pairs])


def scrub(value: Any) -> Any:
    """Recursively filter secret-named keys and secret-looking values."""
    if isinstance(value, dict):
        cleaned: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and secret_name(key):
                cleaned[key] = FILTERED
            elif key == "query_string" and isinstance(item, str):
                cleaned[key] = scrub_query(item)
            else:
                cleaned[key] = scrub(item)
        return cleaned
    if isinstance(value, list):
        # Header lists come as [name, value] pairs.
        if len(value) == 2 and isinstance(value[0], str) and secret_name(value[0]):
            return [value[0], FILTERED]
        return [scrub(item) for item in value]
    if isinstance(value, tuple):
        return tuple(scrub(list(value)))
    if isinstance(value, str):
        return scrub_text(value)
    return value


def _before_send(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any] | None:
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)  # belt and braces: bodies are never sent
        request.pop("cookies", None)
    scrubbed: dict[str, Any] = scrub(event)
    return scrubbed


def _before_breadcrumb(crumb: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any] | None:
    scrubbed: dict[str, Any] = scrub(crumb)
    return scrubbed


def init_sentry(settings: Settings) -> bool:
    """Start Sentry if a DSN is configured; return whether it is on."""
    if not settings.sentry_dsn:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.environment.value,
        release=f"coderoom@{__version__}",
        traces_sample_rate=settings.sentry_traces_sample_rate,
        profiles_sample_rate=settings.sentry_profiles_sample_rate,
        send_default_pii=settings.sentry_send_pii,
        include_local_variables=False,
        max_request_body_size="never",
        event_scrubber=EventScrubber(
            denylist=[*DEFAULT_DENYLIST, *EXTRA_DENYLIST],
            recursive=True,
            send_default_pii=settings.sentry_send_pii,
        ),
        before_send=_before_send,  # type: ignore[arg-type]
        before_breadcrumb=_before_breadcrumb,
        integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
    )
    return True


def set_user(user_id: str) -> None:
    """Only the id: email and IP go with events only when SENTRY_SEND_PII is on."""
    sentry_sdk.set_user({"id": user_id})


def set_tags(**tags: str | None) -> None:
    for name, value in tags.items():
        if value is not None:
            sentry_sdk.set_tag(name, value)


def flush(timeout: float = 2.0) -> None:
    client = sentry_sdk.get_client()
    if client.is_active():
        client.flush(timeout=timeout)


@contextmanager
def job_scope(**tags: str | None) -> Iterator[None]:
    """A monitoring scope of its own for a background job, tagged for search."""
    with sentry_sdk.isolation_scope():
        set_tags(**tags)
        yield
