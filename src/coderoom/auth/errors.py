"""Errors of the auth domain."""

from coderoom.core.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    ValidationError,
)


class EmailAlreadyRegistered(ConflictError):
    code = "email_taken"


class WeakPassword(ValidationError):
    code = "weak_password"


class InvalidEmail(ValidationError):
    code = "invalid_email"


class InvalidCredentials(AuthenticationError):
    """Wrong password and unknown email look exactly alike."""

    code = "invalid_credentials"


class InvalidToken(AuthenticationError):
    code = "invalid_token"


class InvalidTicket(AuthenticationError):
    """A WebSocket ticket that is unknown, already used or expired."""

    code = "invalid_ticket"


class TicketsUnavailable(ServiceUnavailableError):
    code = "tickets_unavailable"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": "5"})


class RefreshTokenReused(AuthenticationError):
    """A used refresh token came back: the whole login (family) has been revoked."""

    code = "refresh_token_reused"


class AccountLocked(RateLimitError):
    code = "account_locked"


class AccountDisabled(PermissionDeniedError):
    """Said only after the password was verified: it tells nothing to a stranger."""

    code = "account_disabled"


class RegistrationClosed(PermissionDeniedError):
    code = "registration_closed"


class InviteRequired(PermissionDeniedError):
    code = "invite_required"


class InvalidInvite(PermissionDeniedError):
    code = "invite_invalid"


class ApiKeyNotAllowed(PermissionDeniedError):
    """An API key on a route outside its scope (executions)."""

    code = "api_key_scope"


class AdminRequired(PermissionDeniedError):
    code = "admin_required"


class UserNotFound(NotFoundError):
    code = "user_not_found"


class ApiKeyNotFound(NotFoundError):
    code = "api_key_not_found"


class SignupInviteNotFound(NotFoundError):
    code = "invite_not_found"


class CannotDisableSelf(ConflictError):
    code = "cannot_disable_self"


class UserExists(ConflictError):
    code = "email_taken"
