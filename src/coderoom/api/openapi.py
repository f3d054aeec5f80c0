"""The OpenAPI document, made to say what the service really answers.

FastAPI describes each route's success from its response model; it knows nothing of our
errors, and documents a 422 body (`HTTPValidationError`) we never send. After FastAPI builds
the document, `describe_errors` gives every operation one response per error status it can
answer with, each an RFC 9457 problem (`application/problem+json`, schema `Problem`) with one
example per `code`. The statuses come from two places, never from a hand-kept list per route:

- declarations: `@raises(SessionNotFound, ...)` (core/errors.py) on the endpoint or on any
  dependency in its tree; `CurrentUser` brings 401/403, `DbSession` 503 `database_unavailable`;
- the request pipeline itself: a route with a body may answer 400 `malformed_json`, 413 and
  415 (api/middleware.py BodyGuard); a route with parameters or a body 422
  `validation_failed`; a path a rate-limit rule covers 429 `rate_limited` (and 503 when the
  limiter fails closed).

A new route gets true declarations by declaring what its endpoint and dependencies raise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.routing import BaseRoute

from coderoom.api.problems import PROBLEM_MEDIA_TYPE, problem_type
from coderoom.core.errors import (
    BadRequestError,
    CoderoomError,
    PayloadTooLargeError,
    RateLimitError,
    ServiceUnavailableError,
    UnsupportedMediaTypeError,
    ValidationError,
    declared_errors,
)

PROBLEM_REF = "#/components/schemas/Problem"

FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "title": "FieldError",
    "type": "object",
    "description": "One invalid part of the request: where and what (never the value sent).",
    "properties": {
        "field": {"type": "string", "description": "e.g. `body.email`, `query.limit`."},
        "message": {"type": "string"},
        "type": {"type": "string", "description": "A stable kind, e.g. `missing`."},
    },
    "required": ["field", "message", "type"],
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An RFC 9457 problem document: every error the API answers has this shape. "
    "Some codes add members of their own (`current_version`, `known_languages`, `limit`…).",
    "properties": {
        "type": {"type": "string", "description": "`urn:coderoom:problem:<code>`."},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "For people; may change."},
        "instance": {"type": "string", "description": "The request path."},
        "code": {"type": "string", "description": "Stable, for programs."},
        "correlation_id": {
            "type": ["string", "null"],
            "description": "The request's X-Correlation-ID; quote it when reporting a problem.",
        },
        "errors": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/FieldError"},
            "description": "Present on request validation failures.",
        },
    },
    "required": ["type", "title", "status", "detail", "instance", "code", "correlation_id"],
    "additionalProperties": True,
}


@dataclass(frozen=True)
class ErrorAnswer:
    """One (status, code) a route may answer with, and an example detail."""

    status: int
    code: str
    title: str
    detail: str
    errors: tuple[dict[str, str], ...] | None = None

    @classmethod
    def of(cls, error: type[CoderoomError], detail: str | None = None) -> ErrorAnswer:
        doc = (error.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        return cls(error.status_code, error.code, error.title, detail or doc or error.title)

    def example(self, path: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": problem_type(self.code),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": path,
            "code": self.code,
            "correlation_id": "3f1a6c0e-5b7d-4f0e-9a57-2c1d8e4b6a90",
        }
        if self.errors is not None:
            body["errors"] = list(self.errors)
        return body


MALFORMED_JSON = ErrorAnswer(
    400, "malformed_json", "Bad Request", "The request body is not valid JSON."
)
BAD_LENGTH = ErrorAnswer.of(BadRequestError, "Invalid Content-Length.")
TOO_LARGE = ErrorAnswer.of(PayloadTooLargeError, "The request body is larger than 1048576 bytes.")
NOT_JSON = ErrorAnswer.of(UnsupportedMediaTypeError, "Send the body as application/json.")
INVALID = ErrorAnswer(
    ValidationError.status_code,
    ValidationError.code,
    ValidationError.title,
    "The request is not valid: see `errors`.",
    ({"field": "body.title", "message": "Field required", "type": "missing"},),
)
RATE_LIMITED = ErrorAnswer.of(RateLimitError, "Too many requests; retry after 12 seconds.")
LIMITER_DOWN = ErrorAnswer.of(
    ServiceUnavailableError, "Rate limiting is unavailable; try again shortly."
)

#: Headers a status always carries (response_headers_conformance holds us to them).
_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "`Bearer`: send an access token (or API key).",
            "schema": {"type": "string"},
        }
    },
}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def route_errors(route: APIRoute | RouteContext, *, rate_limited: bool) -> list[ErrorAnswer]:
    """Every error answer `route` can give, in a stable order, without duplicates."""
    found: list[ErrorAnswer] = []
    has_body = route.body_field is not None
    if has_body:
        found += [MALFORMED_JSON, BAD_LENGTH, TOO_LARGE, NOT_JSON]
    if has_body or route.dependant.query_params or route.dependant.path_params:
        found.append(INVALID)
    for call in _calls(route.dependant):
        found += [ErrorAnswer.of(error) for error in declared_errors(call)]
    if rate_limited:
        found += [RATE_LIMITED, LIMITER_DOWN]
    unique: dict[tuple[int, str], ErrorAnswer] = {}
    for answer in found:
        unique.setdefault((answer.status, answer.code), answer)
    return sorted(unique.values(), key=lambda answer: answer.status)


def _responses(answers: Iterable[ErrorAnswer], path: str) -> dict[str, dict[str, Any]]:
    by_status: dict[int, list[ErrorAnswer]] = {}
    for answer in answers:
        by_status.setdefault(answer.status, []).append(answer)
    responses: dict[str, dict[str, Any]] = {}
    for status, group in by_status.items():
        response: dict[str, Any] = {
            "description": "; ".join(f"`{a.code}`: {a.detail}" for a in group),
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": PROBLEM_REF},
                    "examples": {
                        a.code: {"summary": a.code, "value": a.example(path)} for a in group
                    },
                }
            },
        }
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        responses[str(status)] = response
    return responses


def describe_errors(
    schema: dict[str, Any], routes: Iterable[BaseRoute], rate_limited: Callable[[str], bool]
) -> None:
    """Give each operation of `schema` its error responses (in place)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    components["FieldError"] = FIELD_ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    paths = schema.get("paths", {})
    for route in iter_route_contexts(list(routes)):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        path = route.path_format or ""
        answers = route_errors(route, rate_limited=rate_limited(path))
        for method in route.methods or ():
            operation = paths.get(path, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's HTTPValidationError
            for status, response in _responses(answers, path).items():
                existing = responses.get(status)
                if existing is None:
                    responses[status] = response
                else:  # a success-shaped body of its own (health's 503): keep both
                    existing.setdefault("content", {}).update(response["content"])
                    existing["description"] += "; " + response["description"]
            operation["responses"] = dict(sorted(responses.items()))


def declare_choices(schema: dict[str, Any], choices: Mapping[str, Sequence[str]]) -> None:
    """Give every string property marked `x-choices: <name>` the `enum` of `choices[name]`.

    For values this server decides at start-up (the languages it has installed): a request
    naming another would be refused, so the schema says which are accepted.
    """
    for component in schema.get("components", {}).get("schemas", {}).values():
        for prop in component.get("properties", {}).values():
            values = choices.get(prop.get("x-choices", ""))
            if values is None:
                continue
            targets = [b for b in prop.get("anyOf", [prop]) if b.get("type") == "string"]
            for target in targets:
                target["enum"] = list(values)
                target.pop("pattern", None)


_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def standard_bounds(node: Any) -> None:
    """Pydantic writes a constraint on a type with a before-validator (`JsonInt`) under its
    own name (`ge`), which no JSON Schema tool reads; rename it to the standard keyword."""
    if isinstance(node, dict):
        if node.get("type") in ("integer", "number"):
            for ours, standard in _BOUNDS.items():
                if ours in node:
                    node[standard] = node.pop(ours)
        for value in node.values():
            standard_bounds(value)
    elif isinstance(node, list):
        for value in node:
            standard_bounds(value)


def install_openapi(
    app: FastAPI,
    *,
    rate_limited: Callable[[str], bool],
    choices: Callable[[], Mapping[str, Sequence[str]]] = dict,
) -> None:
    """Replace `app.openapi` with FastAPI's document plus the error responses and the
    server's choices (see `declare_choices`; asked for when the document is first built)."""
    build = app.openapi
    described: list[dict[str, Any]] = []  # the document last described (FastAPI caches it)

    def openapi() -> dict[str, Any]:
        schema = build()
        if not described or described[0] is not schema:
            describe_errors(schema, app.routes, rate_limited)
            declare_choices(schema, choices())
            standard_bounds(schema)
            described[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
