"""Errors of the sessions domain."""

from coderoom.core.errors import ConflictError, GoneError, NotFoundError, PermissionDeniedError


class SessionNotFound(NotFoundError):
    """Also what a non-participant gets for an existing session: ids reveal nothing."""

    code = "session_not_found"


class SessionPermissionDenied(PermissionDeniedError):
    code = "session_permission_denied"


class VersionConflict(ConflictError):
    code = "version_conflict"


class InviteNotFound(NotFoundError):
    code = "invite_not_found"


class InviteGone(GoneError):
    code = "invite_gone"


class ParticipantNotFound(NotFoundError):
    code = "participant_not_found"


class OwnerCannotLeave(ConflictError):
    code = "owner_cannot_leave"


class OwnerRoleFixed(ConflictError):
    code = "owner_role_fixed"
