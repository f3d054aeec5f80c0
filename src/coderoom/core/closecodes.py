"""WebSocket close codes coderoom uses after a connection was accepted.

Before the handshake completes, a refusal is an HTTP response (problem+json, 401/403/404/429
like the REST routes). After it, the only channel left is the close frame: its code says
what happened and its reason (at most 123 bytes) says it in words. 4000-4999 are the range
RFC 6455 leaves to applications; ours mirror the HTTP status they correspond to.
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001  # the server is shutting down, or the client left
    UNSUPPORTED_DATA = 1003  # a frame of a kind the endpoint does not take (text vs binary)
    POLICY_VIOLATION = 1008  # a malformed or hostile message
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012  # reconnect: another instance (or this one, restarted) will serve
    TRY_AGAIN_LATER = 1013  # a dependency (database, Redis) is unavailable right now

    UNAUTHENTICATED = 4401  # the credentials stopped being valid (user disabled, signed out)
    FORBIDDEN = 4403  # access was withdrawn: removed from the session, role lowered
    GONE = 4404  # the resource was deleted while connected
    IDLE_TIMEOUT = 4408
    TOO_LARGE = 4413  # a document or file passed its size cap
    TOO_MANY = 4429  # too many connections, or messages too fast


#: The longest close reason a frame can carry (125-byte control payload minus the code).
MAX_REASON_BYTES = 123


def close_reason(text: str) -> str:
    """`text` cut to fit a close frame, on a character boundary."""
    encoded = text.encode()[:MAX_REASON_BYTES]
    return encoded.decode(errors="ignore")
