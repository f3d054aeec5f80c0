"""Errors of the executions domain."""

from coderoom.core.errors import (
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServiceUnavailableError,
    ValidationError,
)


class ExecutionNotFound(NotFoundError):
    code = "execution_not_found"


class UnknownLanguage(ValidationError):
    code = "unknown_language"


class VersionUnavailable(ValidationError):
    code = "version_unavailable"


class InvalidLimits(ValidationError):
    code = "invalid_limits"


class InvalidProgram(ValidationError):
    code = "invalid_program"


class SourceTooLarge(PayloadTooLargeError):
    code = "source_too_large"


class ExecutionQuotaExceeded(RateLimitError):
    code = "execution_quota_exceeded"


class SandboxUnavailable(ServiceUnavailableError):
    code = "sandbox_unavailable"


class QueueFull(ServiceUnavailableError):
    code = "queue_full"


class QueueUnavailable(ServiceUnavailableError):
    code = "queue_unavailable"


class TooManyStreams(RateLimitError):
    code = "too_many_streams"
