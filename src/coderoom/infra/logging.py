"""structlog set-up: one pipeline for our own log lines and for the stdlib's (uvicorn, alembic).

Context bound with `structlog.contextvars` (the correlation id, the user id) appears in every
line made while it is bound, ours or a library's.

Every line, whatever its source, goes through the same last steps before it is written:

1. exceptions become a traceback *without local variables* (locals hold request headers,
   tokens and program source), at most `MAX_FRAMES` frames;
2. the event is scrubbed by the same rules as Sentry events (`infra.sentry.scrub`):
   secret-named keys, program source, credentials in URLs and JWT-shaped values;
3. the rendered line is bounded to `MAX_LINE_BYTES`: past it, long values and the
   traceback's middle frames are cut, and the line says so.
"""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Callable, MutableMapping
from typing import Any, Literal

import structlog
from structlog.tracebacks import ExceptionDictTransformer

from coderoom.infra.sentry import scrub

MAX_LINE_BYTES = 16 * 1024
MAX_FRAMES = 20
_CUT_VALUE_CHARS = 1024
_KEPT_FRAMES = 6

EventDict = MutableMapping[str, Any]
Renderer = Callable[[Any, str, EventDict], str | bytes]


def _drop_color_message(_logger: Any, _name: str, event: EventDict) -> EventDict:
    event.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
    return event


def _scrub(_logger: Any, _name: str, event: EventDict) -> EventDict:
    cleaned: EventDict = scrub(dict(event))
    return cleaned


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _CUT_VALUE_CHARS:
        return f"{value[:_CUT_VALUE_CHARS]}…[{len(value) - _CUT_VALUE_CHARS} chars cut]"
    if isinstance(value, dict):
        return {key: _cut(item) for key, item in value.items()}
    if isinstance(value, list):
        if len(value) > 2 * _KEPT_FRAMES:  # keep both ends: where it started, where it broke
            value = [
                *value[:_KEPT_FRAMES],
                f"…[{len(value) - 2 * _KEPT_FRAMES} cut]",
                *value[-_KEPT_FRAMES:],
            ]
        return [_cut(item) for item in value]
    return value


class Bounded:
    """Render with `renderer`; when the line is too long, cut values and render again."""

    def __init__(self, renderer: Renderer, limit: int) -> None:
        self._renderer = renderer
        self.limit = limit

    def renderer(self, logger: Any, name: str, event: EventDict) -> str:
        line = self._renderer(logger, name, event)
        return line.decode() if isinstance(line, bytes) else line

    def __call__(self, logger: Any, name: str, event: EventDict) -> str:
        line = self.renderer(logger, name, dict(event))
        if len(line.encode()) <= self.limit:
            return line
        shortened = {key: _cut(value) for key, value in event.items()}
        shortened["log_truncated"] = True
        line = self.renderer(logger, name, shortened)
        if len(line.encode()) <= self.limit:
            return line
        # Still too long (many long values): keep the event and a few short fields.
        kept: dict[str, Any] = {
            k: v for k, v in shortened.items() if isinstance(v, int | float | bool)
        }
        kept.update({k: str(v)[:200] for k, v in shortened.items() if k not in kept})
        return self.renderer(logger, name, kept)[: self.limit]


_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ExtraAdder(),
    _drop_color_message,
]


def final_processors(fmt: Literal["json", "console"]) -> list[Any]:
    """The last steps of every line: traceback without locals, scrub, render, bound."""
    if fmt == "json":
        tracebacks = structlog.processors.ExceptionRenderer(
            ExceptionDictTransformer(show_locals=False, max_frames=MAX_FRAMES)
        )
        renderer: Renderer = structlog.processors.JSONRenderer()
    else:
        # Plain text tracebacks: rich's pretty ones print local variables.
        tracebacks = structlog.processors.format_exc_info
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    return [tracebacks, _scrub, Bounded(renderer, MAX_LINE_BYTES)]


#: Libraries that log what they carry at DEBUG: statement parameters (program source,
#: stdin, password hashes) and raw WebSocket handshakes (tickets, Authorization). They
#: stay at INFO whatever LOG_LEVEL says.
QUIET_LIBRARIES = ("aiosqlite", "asyncpg", "websockets", "wsproto", "sqlalchemy.engine")


class WithoutQueryStrings(logging.Filter):
    """uvicorn logs each WebSocket with its query string (`"WebSocket /path?ticket=…"
    [accepted]`); a ticket may be in it. Keep the path, drop the query. At DEBUG, uvicorn
    also hands its logger to the websockets library, which logs the raw handshake (`< GET
    /path?ticket=…`, `< authorization: …`): those lines are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg[:2] in ("< ", "> "):
            return False
        if isinstance(record.msg, str) and '"WebSocket %s"' in record.msg and record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(
                arg.split("?", 1)[0] if isinstance(arg, str) and arg.startswith("/") else arg
                for arg in args
            )
        return True


def _at_least_info(level: str) -> str:
    return level if logging.getLevelName(level) >= logging.INFO else "INFO"


def configure_logging(level: str, fmt: Literal["json", "console"]) -> None:
    """Route structlog and stdlib logging through one renderer. Safe to call more than once."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "structlog": {
                    "()": structlog.stdlib.ProcessorFormatter,
                    "foreign_pre_chain": _SHARED_PROCESSORS,
                    "processors": [
                        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        *final_processors(fmt),
                    ],
                }
            },
            "filters": {"no_query": {"()": WithoutQueryStrings}},
            "handlers": {
                "default": {
                    "class": "logging.StreamHandler",
                    "formatter": "structlog",
                    "filters": ["no_query"],
                }
            },
            "root": {"handlers": ["default"], "level": level},
            "loggers": {
                # We write our own access log line with more context than uvicorn's.
                "uvicorn.access": {"handlers": [], "propagate": False},
                "uvicorn.error": {"level": level},
                "sqlalchemy.engine": {"level": "WARNING"},
                **{
                    name: {"level": _at_least_info(level)}
                    for name in QUIET_LIBRARIES
                    if name != "sqlalchemy.engine"
                },
            },
        }
    )
    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
