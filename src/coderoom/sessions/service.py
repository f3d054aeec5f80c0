"""Coding sessions: rooms with an owner, participants in roles, invite links and a source
that several people edit (optimistic concurrency through `version`)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from coderoom.auth import service as auth_service
from coderoom.auth.models import User
from coderoom.core.errors import ValidationError
from coderoom.core.pagination import Cursor
from coderoom.core.security import hash_token, new_token
from coderoom.sessions import repository
from coderoom.sessions.documents import DocumentState, SessionDocuments
from coderoom.sessions.errors import (
    InviteGone,
    InviteNotFound,
    OwnerCannotLeave,
    OwnerRoleFixed,
    ParticipantNotFound,
    SessionNotFound,
    SessionPermissionDenied,
    VersionConflict,
)
from coderoom.sessions.models import CodingSession, Invite, Participant
from coderoom.sessions.schemas import (
    InviteCreate,
    InviteCreated,
    InviteRead,
    Owner,
    ParticipantRead,
    ParticipantRoleUpdate,
    PresentUser,
    SessionCreate,
    SessionPage,
    SessionRead,
    SessionUpdate,
)

Need = Literal["read", "edit", "own"]
RIGHTS: dict[str, set[str]] = {
    "owner": {"read", "edit", "own"},
    "editor": {"read", "edit"},
    "viewer": {"read"},
}


def _now() -> datetime:
    return datetime.now(UTC)


def _check_language(language: str, languages: Collection[str]) -> None:
    if language not in languages:
        raise ValidationError(
            f"Unknown language {language!r}; known: {', '.join(sorted(languages))}.",
            errors=[{"field": "body.language", "message": "unknown language", "type": "language"}],
            extra={"known_languages": sorted(languages)},
        )


async def access(
    db: AsyncSession, *, session_id: uuid.UUID, user: User, need: Need
) -> tuple[CodingSession, Participant]:
    """The session and the caller's membership, if the caller may do `need` there.

    Not a participant → SessionNotFound (the same as a missing session: ids reveal
    nothing); a participant without the right → SessionPermissionDenied.
    """
    session = await repository.get(db, session_id)
    member = await repository.get_participant(db, session_id, user.id) if session else None
    if session is None or member is None:
        raise SessionNotFound("No such session.")
    if need not in RIGHTS[member.role]:
        raise SessionPermissionDenied(f"A {member.role} may not do this in the session.")
    return session, member


async def render(
    db: AsyncSession,
    sessions: list[CodingSession],
    *,
    documents: SessionDocuments | None = None,
) -> list[SessionRead]:
    """Sessions as the API shows them. With `documents`, each one's files and present users
    come from its live document (one read each: for single sessions, not for lists)."""
    members = await repository.participants(db, [s.id for s in sessions])
    people = await auth_service.get_users(
        db, list({m.user_id for m in members} | {s.owner_id for s in sessions})
    )
    by_session: dict[uuid.UUID, list[ParticipantRead]] = {}
    for member in members:
        person = people.get(member.user_id)
        by_session.setdefault(member.session_id, []).append(
            ParticipantRead(
                user_id=member.user_id,
                display_name=person.display_name if person else "",
                role=member.role,
                joined_at=member.joined_at,
            )
        )
    rendered = []
    for s in sessions:
        state = await documents.read(db, s) if documents is not None else None
        rendered.append(
            SessionRead(
                id=s.id,
                title=s.title,
                description=s.description,
                language=s.language,
                source=state.entry_text if state is not None else s.source,
                files=state.files if state is not None else None,
                entry_file=state.entry_file if state is not None else None,
                version=s.version,
                owner=Owner(id=s.owner_id, display_name=people[s.owner_id].display_name),
                participants=by_session.get(s.id, []),
                present=await _present(db, documents, s.id) if documents is not None else None,
                last_activity_at=s.last_activity_at,
                created_at=s.created_at,
                updated_at=s.updated_at,
            )
        )
    return rendered


async def _present(
    db: AsyncSession, documents: SessionDocuments, session_id: uuid.UUID
) -> list[PresentUser]:
    user_ids = await documents.present(session_id)
    people = await auth_service.get_users(db, user_ids)
    return [
        PresentUser(user_id=u, display_name=people[u].display_name) for u in user_ids if u in people
    ]


async def render_one(
    db: AsyncSession, session: CodingSession, *, documents: SessionDocuments | None = None
) -> SessionRead:
    return (await render(db, [session], documents=documents))[0]


async def create(
    db: AsyncSession,
    *,
    owner: User,
    data: SessionCreate,
    languages: Collection[str],
    documents: SessionDocuments | None = None,
) -> SessionRead:
    """Open a session; its creator is its owner."""
    _check_language(data.language, languages)
    now = _now()
    session = CodingSession(
        title=data.title,
        description=data.description,
        language=data.language,
        source=data.source,
        version=1,
        owner_id=owner.id,
        created_at=now,
        updated_at=now,
        last_activity_at=now,
    )
    db.add(session)
    await db.flush()
    db.add(Participant(session_id=session.id, user_id=owner.id, role="owner", joined_at=now))
    await db.flush()
    return await render_one(db, session, documents=documents)


async def list_for(db: AsyncSession, *, user: User, limit: int, cursor: str | None) -> SessionPage:
    """The caller's sessions, owned or joined, most recently active first."""
    position = Cursor.decode(cursor) if cursor else None
    rows = await repository.list_for_user(db, user.id, limit=limit + 1, cursor=position)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = Cursor(rows[-1].last_activity_at, rows[-1].id).encode() if more else None
    return SessionPage(items=await render(db, rows), next_cursor=next_cursor)


async def update(
    db: AsyncSession,
    *,
    session_id: uuid.UUID,
    user: User,
    data: SessionUpdate,
    languages: Collection[str],
    documents: SessionDocuments,
) -> SessionRead:
    """Edit a session. Text changes (`source`, `files`) are applied to the live document as
    CRDT changes of only the ranges that differ; a change of any file's text bumps
    `version`. With `base_version`, refuse unless it is still current (409)."""
    session, _ = await access(db, session_id=session_id, user=user, need="edit")
    values = data.model_dump(
        exclude_unset=True,
        exclude={"base_version", "files", "source", "entry_file", "base_source", "base_files"},
    )
    values = {k: v for k, v in values.items() if v is not None}
    if "language" in values:
        _check_language(str(values["language"]), languages)
    text_changed = False
    if data.source is not None or data.files or data.entry_file or "language" in values:
        before = await documents.read(db, session)
        changes: dict[str, str | None] = dict(data.files or {})
        bases: dict[str, str] = dict(data.base_files or {})
        if data.source is not None:
            entry = data.entry_file or before.entry_file
            changes[entry] = data.source
            if data.base_source is not None:
                bases[entry] = data.base_source
        after = await _write_document(
            db, documents, session, before, changes=changes, bases=bases, data=data, values=values
        )
        text_changed = after.files != before.files
        values["source"] = after.entry_text  # the column caches the entry file's text
    applied = await repository.update_fields(
        db,
        session_id,
        values=values,
        bump_version=text_changed,
        base_version=data.base_version,
        now=_now(),
    )
    await db.refresh(session)
    if not applied:
        raise VersionConflict(
            f"The session is at version {session.version}, not {data.base_version}; "
            "reload it and apply your change again.",
            extra={"current_version": session.version},
        )
    return await render_one(db, session, documents=documents)


async def _write_document(
    db: AsyncSession,
    documents: SessionDocuments,
    session: CodingSession,
    before: DocumentState,
    *,
    changes: dict[str, str | None],
    bases: dict[str, str],
    data: SessionUpdate,
    values: dict[str, object],
) -> DocumentState:
    entry = data.entry_file
    if entry is not None and entry not in before.files and changes.get(entry) is None:
        raise ValidationError(
            f"No file {entry!r} to make the entry file; send it in `files` too.",
            errors=[{"field": "body.entry_file", "message": "no such file", "type": "file"}],
        )
    if changes.get(entry or before.entry_file, "") is None:
        raise ValidationError(
            "The entry file cannot be deleted; choose another `entry_file` first.",
            errors=[{"field": "body.files", "message": "entry file deleted", "type": "file"}],
        )
    try:
        return await documents.write(
            db,
            session,
            files=changes,
            bases=bases,
            entry_file=entry,
            language=str(values["language"]) if "language" in values else None,
        )
    except ValueError as exc:  # a file name the sandbox would refuse
        raise ValidationError(
            str(exc), errors=[{"field": "body.files", "message": str(exc), "type": "file"}]
        ) from None


async def delete(db: AsyncSession, *, session_id: uuid.UUID, user: User) -> None:
    """Delete a session (owner only). Participants and invites go with it; executions stay
    readable by whoever created them, no longer linked to a session."""
    session, _ = await access(db, session_id=session_id, user=user, need="own")
    await db.delete(session)
    await db.flush()


def _invite_read(invite: Invite) -> InviteRead:
    return InviteRead(
        id=invite.id,
        role=invite.role,
        label=invite.label,
        expires_at=invite.expires_at,
        max_uses=invite.max_uses,
        uses=invite.uses,
        revoked=invite.revoked_at is not None,
        created_at=invite.created_at,
    )


#: The web app's page that joins a session with an invite (web/), under the public URL.
JOIN_PATH = "/join/{token}"


async def create_invite(
    db: AsyncSession,
    *,
    session_id: uuid.UUID,
    user: User,
    data: InviteCreate,
    public_url: str,
) -> InviteCreated:
    """An invite link (owner only): `public_url` + JOIN_PATH. The token is shown once and
    stored only as a hash."""
    await access(db, session_id=session_id, user=user, need="own")
    token = new_token(32)
    now = _now()
    invite = Invite(
        session_id=session_id,
        created_by=user.id,
        token_hash=hash_token(token),
        role=data.role,
        label=data.label,
        expires_at=now + timedelta(hours=data.expires_in_hours) if data.expires_in_hours else None,
        max_uses=data.max_uses,
        uses=0,
        created_at=now,
    )
    db.add(invite)
    await db.flush()
    return InviteCreated(
        **_invite_read(invite).model_dump(),
        token=token,
        url=public_url + JOIN_PATH.format(token=token),
    )


async def list_invites(db: AsyncSession, *, session_id: uuid.UUID, user: User) -> list[InviteRead]:
    await access(db, session_id=session_id, user=user, need="own")
    return [_invite_read(i) for i in await repository.list_invites(db, session_id)]


async def revoke_invite(
    db: AsyncSession, *, session_id: uuid.UUID, invite_id: uuid.UUID, user: User
) -> None:
    await access(db, session_id=session_id, user=user, need="own")
    invite = await repository.get_invite(db, invite_id)
    if invite is None or invite.session_id != session_id:
        raise InviteNotFound("No such invite.")
    if invite.revoked_at is None:
        invite.revoked_at = _now()
        await db.flush()


async def join(db: AsyncSession, *, user: User, token: str) -> SessionRead:
    """Join with an invite token. Already a participant: nothing changes, no use is spent."""
    invite = await repository.get_invite_by_hash(db, hash_token(token))
    if invite is None:
        raise InviteNotFound("No such invite.")
    session = await repository.get(db, invite.session_id)
    if session is None:
        raise InviteNotFound("No such invite.")
    if await repository.get_participant(db, session.id, user.id) is not None:
        return await render_one(db, session)
    now = _now()
    # Participant first, then the use: a join that lost a race with the same user's other
    # join adds nothing and spends nothing; a used-up invite rolls the insert back.
    if not await repository.add_participant(db, session.id, user.id, role=invite.role, now=now):
        return await render_one(db, session)
    if not await repository.consume_invite(db, invite.id, now=now):
        raise InviteGone("This invite has expired, been revoked or been used up.")
    await repository.touch(db, session.id, now=now)
    await db.flush()
    await db.refresh(session)
    return await render_one(db, session)


async def remove_participant(
    db: AsyncSession, *, session_id: uuid.UUID, user_id: uuid.UUID, user: User
) -> None:
    """The owner removes anyone else; anyone may leave. The owner cannot leave."""
    leaving = user_id == user.id
    session, _ = await access(
        db, session_id=session_id, user=user, need="read" if leaving else "own"
    )
    if user_id == session.owner_id:
        raise OwnerCannotLeave("The owner cannot leave; delete the session instead.")
    if not await repository.remove_participant(db, session_id, user_id):
        raise ParticipantNotFound("No such participant.")


async def set_role(
    db: AsyncSession,
    *,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    user: User,
    data: ParticipantRoleUpdate,
) -> ParticipantRead:
    """Change a participant's role (owner). Open live connections follow within a second."""
    await access(db, session_id=session_id, user=user, need="own")
    member = await repository.get_participant(db, session_id, user_id)
    if member is None:
        raise ParticipantNotFound("No such participant.")
    if member.role == "owner":
        raise OwnerRoleFixed("The owner's role cannot change.")
    member.role = data.role
    await repository.touch(db, session_id, now=_now())
    await db.flush()
    person = (await auth_service.get_users(db, [user_id])).get(user_id)
    return ParticipantRead(
        user_id=user_id,
        display_name=person.display_name if person else "",
        role=member.role,
        joined_at=member.joined_at,
    )


async def roles(
    db: AsyncSession, session_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[uuid.UUID, str]]:
    """Each existing session's participants and roles (a deleted session is absent)."""
    members = await repository.participants(db, session_ids)
    found: dict[uuid.UUID, dict[uuid.UUID, str]] = {}
    for member in members:
        found.setdefault(member.session_id, {})[member.user_id] = member.role
    return found


async def record_activity(
    db: AsyncSession, session_id: uuid.UUID, *, at: datetime, source: str | None = None
) -> None:
    """Live edits happened (and, with `source`, the entry file now reads so)."""
    values: dict[str, object] = {"last_activity_at": at}
    if source is not None:
        values["source"] = source
    await repository.set_columns(db, session_id, values)
