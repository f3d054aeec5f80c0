"""The durable log of a live document: Yjs updates, and snapshots that replace runs of them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from coderoom.infra.orm import Base, UTCDateTime, utcnow


class LiveUpdate(Base):
    """One accepted Yjs update (v1 encoding) of a session's document, or a snapshot: the
    merge of every row it replaced. Yjs updates commute and are idempotent, so the document
    is the merge of all rows in any order, and compaction needs no lock (see store.py)."""

    __tablename__ = "live_updates"
    __table_args__ = (Index("ix_live_updates_session_id_id", "session_id", "id"),)

    # SQLite only auto-increments an INTEGER PRIMARY KEY.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    session_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False
    )
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    snapshot: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
