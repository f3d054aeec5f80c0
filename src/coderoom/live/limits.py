"""Every cap of the live endpoint, in one typed policy (set from Settings in api/app.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LiveLimits:
    max_file_bytes: int = 256 * 1024
    max_document_bytes: int = 1024 * 1024
    #: One frame; a first sync step 2 carries the whole document, so keep it above that.
    max_message_bytes: int = 2 * 1024 * 1024
    #: Document updates a connection may send per second, sustained, and in a burst.
    updates_per_second: float = 50.0
    update_burst: int = 200
    #: Awareness messages (cursor moves) per second, and burst.
    awareness_per_second: float = 30.0
    awareness_burst: int = 120
    max_connections_per_user: int = 16
    max_connections_per_session: int = 64
    #: Messages queued to a client that does not read; beyond it the client is dropped.
    max_send_queue: int = 2048
    #: A room with no connection is unloaded from memory after this long.
    idle_seconds: float = 30.0
    #: How often open connections' roles are checked against the database.
    access_check_seconds: float = 0.5
    #: A room compacts its log into a snapshot after this many appended updates.
    compact_every: int = 500
