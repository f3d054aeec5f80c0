"""Executions: one submitted program, its limits and, once run, its verdict and output."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from coderoom.executions.status import ExecutionStatus
from coderoom.infra.orm import Base, UTCDateTime, UUIDPrimaryKey, utcnow

#: Stored as the value (`"queued"`), in a VARCHAR with a CHECK constraint naming every member
#: (`ck_executions_status`, see migration 0002) rather than a native PostgreSQL enum, so the
#: same schema serves SQLite and adding a member is one constraint swap.
STATUS_TYPE = Enum(
    ExecutionStatus,
    name="status",
    native_enum=False,
    create_constraint=True,
    length=20,
    validate_strings=True,
    values_callable=lambda members: [m.value for m in members],
)


class Execution(UUIDPrimaryKey, Base):
    __tablename__ = "executions"
    __table_args__ = (
        Index("ix_executions_created_by_created_at", "created_by", "created_at"),
        Index("ix_executions_session_id_created_at", "session_id", "created_at"),
        Index("ix_executions_status", "status"),
    )

    language: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[ExecutionStatus] = mapped_column(
        STATUS_TYPE, nullable=False, default=ExecutionStatus.QUEUED
    )
    # Code is stored exactly as sent: never sanitized, never trimmed.
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    stdin: Mapped[str] = mapped_column(Text, nullable=False, default="")
    args: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    compile_limits: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # stdin stays open after `stdin` for input sent while it runs (live.py, /attach).
    interactive: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )

    exit_code: Mapped[int | None] = mapped_column(Integer)
    signal: Mapped[int | None] = mapped_column(Integer)
    stdout: Mapped[str] = mapped_column(Text, nullable=False, default="")
    stderr: Mapped[str] = mapped_column(Text, nullable=False, default="")
    compile_output: Mapped[str] = mapped_column(Text, nullable=False, default="")
    stdout_truncated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    stderr_truncated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    wall_time_ms: Mapped[int | None] = mapped_column(Integer)
    cpu_time_ms: Mapped[int | None] = mapped_column(Integer)
    memory_kb: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    correlation_id: Mapped[str | None] = mapped_column(String(128))

    session_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("sessions.id", ondelete="SET NULL")
    )
    created_by: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
