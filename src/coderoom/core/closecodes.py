"""WebSocket close codes coderoom sends after accepting a connection.

4000-4999 are the application's own range (RFC 6455 §7.4.2); each mirrors the HTTP status a
REST call would get for the same reason, so 4403 reads as "forbidden". The standard codes
(1008, 1011, 1012) keep their RFC meaning. docs/API.md lists them for clients.
"""

from __future__ import annotations

from typing import Final

UNAUTHENTICATED: Final = 4401
FORBIDDEN: Final = 4403  # forbidden, or the role that allowed the connection was lost
GONE: Final = 4404  # the resource no longer exists (e.g. the session was deleted)
IDLE: Final = 4408
REPLACED: Final = 4409
TOO_BIG: Final = 4413
TOO_MANY: Final = 4429
UNSUPPORTED_DATA: Final = 1003  # a text frame where only binary is spoken
POLICY_VIOLATION: Final = 1008  # a malformed or hostile message
INTERNAL_ERROR: Final = 1011
SERVICE_RESTART: Final = 1012
