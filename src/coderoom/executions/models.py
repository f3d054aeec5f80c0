"""Executions: one submitted program, its limits and, once run, its verdict and output."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from coderoom.infra.orm import Base, UTCDateTime, UUIDPrimaryKey, utcnow

ExecutionStatus = Literal[
    "queued",
    "running",
    "succeeded",
    "failed",
    "compile_error",
    "timed_out",
    "memory_exceeded",
    "output_exceeded",
    "internal_error",
    "cancelled",
]
STATUSES: tuple[str, ...] = get_args(ExecutionStatus)


class Execution(UUIDPrimaryKey, Base):
    __tablename__ = "executions"
    __table_args__ = (
        Index("ix_executions_created_by_created_at", "created_by", "created_at"),
        Index("ix_executions_session_id_created_at", "session_id", "created_at"),
        Index("ix_executions_status", "status"),
    )

    language: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="queued")
    # Code is stored exactly as sent: never sanitized, never trimmed.
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    stdin: Mapped[str] = mapped_column(Text, nullable=False, default="")
    args: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    compile_limits: Mapped[dict[str, Any] | None] = mapped_column(JSON)

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
