"""Errors of the auth domain."""

from coderoom.core.errors import (
    AuthenticationError,
    ConflictError,
    RateLimitError,
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


class RefreshTokenReused(AuthenticationError):
    """A used refresh token came back: the whole login (family) has been revoked."""

    code = "refresh_token_reused"


class AccountLocked(RateLimitError):
    code = "account_locked"
