"""The error hierarchy. Every error a client can see is one of these.

    CoderoomError (500, "internal_error")
    ├── BadRequestError (400)
    ├── AuthenticationError (401)
    ├── PermissionDeniedError (403)
    ├── NotFoundError (404)
    ├── ConflictError (409)
    ├── GoneError (410)
    ├── PayloadTooLargeError (413)
    ├── UnsupportedMediaTypeError (415)
    ├── ValidationError (422)
    ├── RateLimitError (429)
    └── ServiceUnavailableError (503)

Domains subclass these (`SessionNotFound(NotFoundError)`) and set a stable `code`; the API
layer renders them all as RFC 9457 problem documents in one place. Nothing here knows HTTP
frameworks: `status_code` is just the number the API layer will use.

`@raises(SessionNotFound, ...)` on an endpoint or a dependency declares what it can raise;
the API layer turns the declarations into the route's documented responses (api/openapi.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])
_DECLARED = "__coderoom_raises__"


class CoderoomError(Exception):
    """Base of every error the API reports. Subclasses set status, code and title."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        super().__init__(self.detail)


class BadRequestError(CoderoomError):
    status_code = 400
    code = "bad_request"
    title = "Bad Request"


class AuthenticationError(CoderoomError):
    status_code = 401
    code = "authentication_required"
    title = "Unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("WWW-Authenticate", "Bearer")


class PermissionDeniedError(CoderoomError):
    status_code = 403
    code = "permission_denied"
    title = "Forbidden"


class NotFoundError(CoderoomError):
    status_code = 404
    code = "not_found"
    title = "Not Found"


class MethodNotAllowedError(CoderoomError):
    status_code = 405
    code = "method_not_allowed"
    title = "Method Not Allowed"


class ConflictError(CoderoomError):
    status_code = 409
    code = "conflict"
    title = "Conflict"


class GoneError(CoderoomError):
    status_code = 410
    code = "gone"
    title = "Gone"


class PayloadTooLargeError(CoderoomError):
    status_code = 413
    code = "payload_too_large"
    title = "Payload Too Large"


class UnsupportedMediaTypeError(CoderoomError):
    status_code = 415
    code = "unsupported_media_type"
    title = "Unsupported Media Type"


class ValidationError(CoderoomError):
    status_code = 422
    code = "validation_failed"
    title = "Unprocessable Content"


class RateLimitError(CoderoomError):
    status_code = 429
    code = "rate_limited"
    title = "Too Many Requests"


class ServiceUnavailableError(CoderoomError):
    status_code = 503
    code = "service_unavailable"
    title = "Service Unavailable"


#: Map an HTTP status seen from the framework (404 on an unknown path, 405…) to our class.
ERRORS_BY_STATUS: dict[int, type[CoderoomError]] = {
    cls.status_code: cls
    for cls in (
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        MethodNotAllowedError,
        ConflictError,
        GoneError,
        PayloadTooLargeError,
        UnsupportedMediaTypeError,
        ValidationError,
        RateLimitError,
        ServiceUnavailableError,
    )
}


def raises(*errors: type[CoderoomError]) -> Callable[[_F], _F]:
    """Declare the errors an endpoint or a dependency can raise (for the API description).

    Only the declaration: nothing is wrapped or caught. Apply it below the route decorator,
    so the function the router records carries the mark.
    """

    def mark(func: _F) -> _F:
        setattr(func, _DECLARED, (*declared_errors(func), *errors))
        return func

    return mark


def declared_errors(func: object) -> tuple[type[CoderoomError], ...]:
    """What `@raises` declared on `func` (empty when nothing was)."""
    found = getattr(func, _DECLARED, ())
    return tuple(found) if isinstance(found, tuple) else ()
