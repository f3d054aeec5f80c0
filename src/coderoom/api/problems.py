"""RFC 9457 problem documents: the one shape every error response has."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import Scope

from coderoom.core.errors import CoderoomError

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_type(code: str) -> str:
    return f"urn:coderoom:problem:{code}"


def correlation_id_of(scope: Scope) -> str | None:
    state = scope.get("state") or {}
    value = state.get("correlation_id")
    return value if isinstance(value, str) else None


def problem_body(
    scope: Scope,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: Sequence[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": scope.get("path", ""),
        "code": code,
        "correlation_id": correlation_id_of(scope),
    }
    if errors is not None:
        body["errors"] = list(errors)
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    return body


def problem_response(
    scope: Scope,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body = problem_body(
        scope, status=status, code=code, title=title, detail=detail, errors=errors, extra=extra
    )
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def error_response(scope: Scope, error: CoderoomError) -> JSONResponse:
    return problem_response(
        scope,
        status=error.status_code,
        code=error.code,
        title=error.title,
        detail=error.detail,
        errors=error.errors,
        headers=error.headers,
        extra=error.extra,
    )
