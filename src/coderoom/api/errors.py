"""The one place where exceptions become HTTP responses (RFC 9457 problem+json)."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from coderoom.api.problems import error_response, problem_response
from coderoom.core.errors import ERRORS_BY_STATUS, CoderoomError
from coderoom.core.text import LONE_SURROGATE

log = structlog.get_logger(__name__)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Where and what, never the rejected input itself (it may be a password)."""
    return [
        {
            "field": ".".join(str(part) for part in error["loc"]),
            "message": error["msg"],
            "type": error["type"],
        }
        for error in exc.errors()
    ]


#: The detail of the 400 FastAPI raises when parsing a body fails other than by syntax.
FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"


def _malformed_json(
    request: Request, detail: str = "The request body is not valid JSON."
) -> Response:
    return problem_response(
        request.scope,
        status=400,
        code="malformed_json",
        title="Bad Request",
        detail=detail,
    )


async def _coderoom_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CoderoomError)
    if exc.status_code >= 500:  # an incident worth an alert; 4xx are the client's business
        log.error("request.server_error", code=exc.code, status=exc.status_code, detail=exc.detail)
    return error_response(request.scope, exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    if any(error["type"] == "json_invalid" for error in errors):
        return _malformed_json(request)
    if any(error["type"] in (LONE_SURROGATE, "string_unicode") for error in errors):
        # `"\ud800"` parses in Python but is not I-JSON (RFC 7493): not Unicode text, and
        # many JSON parsers refuse it. Malformed, like any body that is not proper JSON.
        return _malformed_json(
            request,
            "The request body is not valid JSON: a string holds a lone surrogate "
            "(\\uD800 to \\uDFFF).",
        )
    return problem_response(
        request.scope,
        status=422,
        code="validation_failed",
        title="Unprocessable Content",
        detail="The request is not valid: see `errors`.",
        errors=errors,
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route answers on this path (Starlette names only the first route's).

    Asked of the routes themselves (`matches`), so routes with their own matching rules
    (the web app's fallback) are judged as the router judges them.
    """
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and exc.detail == FASTAPI_BODY_PARSE_ERROR:
        # FastAPI's answer when json.loads raises anything but JSONDecodeError: a
        # 100,000-deep `[[[…` body is a RecursionError. It is malformed JSON all the same.
        return _malformed_json(request)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    cls = ERRORS_BY_STATUS.get(exc.status_code)
    code = cls.code if cls else f"http_{exc.status_code}"
    title = cls.title if cls else "Error"
    detail = exc.detail if isinstance(exc.detail, str) else title
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No resource at {request.url.path}."
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        detail = f"{request.method} is not allowed on {request.url.path}."
    return problem_response(
        request.scope,
        status=exc.status_code,
        code=code,
        title=title,
        detail=detail,
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CoderoomError, _coderoom_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
