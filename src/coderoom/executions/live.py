"""Live executions: each run's events as they happen, and steering a run from anywhere.

    runner ── RunPublisher (a RunObserver) ──append──▶ Logs: P:executions:<id>:events
                                                            P:sessions:<id>:events
    SSE / WebSocket ◀── LiveRuns.events(id, after) ◀──watch──┘
    WebSocket / cancel ── LiveRuns.steer ──append──▶ P:executions:<id>:control
                                                      └──▶ runner: LiveRuns.steer_run ──▶ RunControl

One vocabulary of events (`EventKind`): `status` (queued, running — with the phase,
compiling or running — then the final status), `compile`, `stdout`, `stderr` (chunks:
`{"data": text}`), `lagged` (some events are missing here: fetch the result), `result`
(the body of GET /sandbox/executions/{id}). The run's writer never waits for a reader:
`Logs.append` is fire-and-forget into a bounded buffer, and each reader keeps its own
position in a bounded window.

When the log is gone (expired, or never written because Redis was down), `replay` makes the
same events from the stored row, so a late reader always gets the whole run.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import structlog

from coderoom.infra.eventlog import Entry, Lagged, Logs, follow, parse_id
from coderoom.infra.keys import RedisNames
from coderoom.sandbox.control import STDIN_BUFFER_BYTES, OutputStream, Phase, RunControl

log = structlog.get_logger(__name__)


class EventKind(StrEnum):
    STATUS = "status"
    COMPILE = "compile"
    STDOUT = "stdout"
    STDERR = "stderr"
    LAGGED = "lagged"
    RESULT = "result"


#: Ids of the events made from a stored row (`replay`): older than any id a log gives.
REPLAY_IDS = ("0-1", "0-2", "0-3", "0-4", "0-5")


@dataclass(frozen=True)
class LiveEvent:
    id: str | None  # None: not resumable (a `lagged` notice)
    kind: EventKind
    data: dict[str, Any]
    raw: str | None = None  # `data` as JSON, when known

    @property
    def json(self) -> str:
        return self.raw if self.raw is not None else json.dumps(self.data, separators=(",", ":"))

    @property
    def final(self) -> bool:
        return self.kind is EventKind.RESULT


def _event(entry: Entry) -> LiveEvent:
    """The entry as an event, parsed once however many readers it has."""
    event = entry.memo.get("event")
    if event is None:
        raw = entry.fields.get("data", "{}")
        data = json.loads(raw)
        if "execution" in entry.fields:  # a session's log names the run of each event
            data["execution_id"] = entry.fields["execution"]
            raw = json.dumps(data, separators=(",", ":"))
        event = entry.memo["event"] = LiveEvent(
            entry.id, EventKind(entry.fields["event"]), data, raw
        )
    assert isinstance(event, LiveEvent)
    return event


def _lagged(missed: int | None) -> LiveEvent:
    return LiveEvent(None, EventKind.LAGGED, {"missed": missed})


def valid_event_id(text: str) -> bool:
    try:
        parse_id(text)
    except ValueError:
        return False
    return True


def _storable(text: str) -> str:
    return text.replace("\x00", "\ufffd")  # as the stored output (service._storable)


class Steer(StrEnum):
    STDIN = "stdin"
    EOF = "eof"
    SIGNAL = "signal"
    CANCEL = "cancel"


class LiveRuns:
    def __init__(self, logs: Logs, names: RedisNames) -> None:
        self.logs = logs
        self.names = names

    # -- writing (the runner, and the API for runs that never start) --------------------

    def publish(
        self,
        execution_id: uuid.UUID,
        session_id: uuid.UUID | None,
        kind: EventKind,
        data: dict[str, Any],
    ) -> None:
        fields = {"event": kind.value, "data": json.dumps(data, separators=(",", ":"))}
        self.logs.append(self.names.execution_events(str(execution_id)), fields)
        if session_id is not None:
            self.logs.append(
                self.names.session_events(str(session_id)),
                {**fields, "execution": str(execution_id)},
                numbered=False,  # many writers: gaps are found by position only
            )

    def status(
        self,
        execution_id: uuid.UUID,
        *,
        session_id: uuid.UUID | None,
        created_by: uuid.UUID,
        status: str,
        phase: str | None = None,
    ) -> None:
        data: dict[str, Any] = {"status": status, "created_by": str(created_by)}
        if phase is not None:
            data["phase"] = phase
        self.publish(execution_id, session_id, EventKind.STATUS, data)

    def finish(
        self, execution_id: uuid.UUID, *, session_id: uuid.UUID | None, result: dict[str, Any]
    ) -> None:
        """The final status and the result (the body of GET), then the log's retention."""
        self.status(
            execution_id,
            session_id=session_id,
            created_by=uuid.UUID(str(result["created_by"])),
            status=str(result["status"]),
        )
        self.publish(execution_id, session_id, EventKind.RESULT, result)
        self.logs.end(self.names.execution_events(str(execution_id)))
        self.logs.end(self.names.execution_control(str(execution_id)))
        if session_id is not None:
            self.logs.end(self.names.session_events(str(session_id)))  # re-armed per run

    def publisher(
        self, execution_id: uuid.UUID, *, session_id: uuid.UUID | None, created_by: uuid.UUID
    ) -> RunPublisher:
        return RunPublisher(self, execution_id, session_id=session_id, created_by=created_by)

    # -- reading --------------------------------------------------------------------------

    async def events(
        self,
        execution_id: uuid.UUID,
        *,
        after: str | None,
        idle: float,
        stored: Callable[[], Any],
    ) -> AsyncIterator[LiveEvent]:
        """The run's events after `after`, ending with `result`.

        `stored()` (async) returns the row's `replay` events when the run is over, else
        None; it is asked when the log holds nothing, and every `idle` seconds without an
        event (a result the log lost is then still delivered)."""
        key = self.names.execution_events(str(execution_id))
        async with self.logs.watch(key) as tail:
            if not tail.entries:
                replayed = await stored()
                if replayed is not None:
                    for event in _resume(replayed, after):
                        yield event
                    return
            async for item in follow(tail, after, idle=idle):
                if item is None:
                    replayed = await stored()
                    if replayed is not None:
                        yield _lagged(None)
                        yield replayed[-1]  # the result
                        return
                    continue
                if isinstance(item, Lagged):
                    yield _lagged(item.missed)
                    continue
                event = _event(item)
                yield event
                if event.final:
                    return

    async def session_events(
        self, session_id: uuid.UUID, *, after: str | None, idle: float
    ) -> AsyncIterator[LiveEvent | None]:
        """Every event of every run of the session from now (or after `after`); None
        after `idle` seconds without one."""
        key = self.names.session_events(str(session_id))
        async with self.logs.watch(key) as tail:
            if after is None and tail.entries:
                after = tail.entries[-1][1].id  # live from now: the log is not a history
            async for item in follow(tail, after, idle=idle):
                if item is None:
                    yield None
                elif isinstance(item, Lagged):
                    yield _lagged(item.missed)
                else:
                    yield _event(item)

    # -- steering -------------------------------------------------------------------------

    def steer(self, execution_id: uuid.UUID, command: Steer, value: str = "") -> None:
        """Send a command to whoever runs (or will run) the execution."""
        self.logs.append(
            self.names.execution_control(str(execution_id)),
            {"type": command.value, "value": value},
        )

    async def offer_stdin(self, execution_id: uuid.UUID, data: str) -> bool:
        """Send input unless the run already holds STDIN_BUFFER_BYTES its program has not
        read (counted across every instance: `names.execution_stdin`, settled by
        `steer_run` as the program reads); False: refused, nothing sent."""
        key = self.names.execution_stdin(str(execution_id))
        size = len(data.encode())
        backlog = await self.logs.count(key, size)
        if backlog is None or backlog > STDIN_BUFFER_BYTES:
            if backlog is not None:
                await self.logs.count(key, -size)
            return False
        self.steer(execution_id, Steer.STDIN, data)
        return True

    async def steer_run(self, execution_id: uuid.UUID, control: RunControl) -> None:
        """Apply the execution's commands to its run, until cancelled (by the runner)."""
        key = self.names.execution_control(str(execution_id))
        backlog = _StdinBacklog(self.logs, self.names.execution_stdin(str(execution_id)))
        settling = asyncio.create_task(backlog.settle_while(control))
        try:
            async with self.logs.watch(key) as tail:
                async for item in follow(tail, None):
                    if isinstance(item, Entry):
                        await _apply(control, item.fields, backlog)
        finally:
            settling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await settling
            # The run is over: nothing it held is unread any more.
            await backlog.settle(backlog.held)


#: How often a run's runner tells the shared stdin count what its program has read.
STDIN_SETTLE_SECONDS = 0.1


class _StdinBacklog:
    """The runner's side of the stdin count: bytes taken from the control log and not yet
    read by the program (`held`), given back to the shared count as the program reads."""

    def __init__(self, logs: Logs, key: str) -> None:
        self.logs = logs
        self.key = key
        self.held = 0

    async def settle(self, size: int) -> None:
        if size > 0:
            self.held -= size
            await self.logs.count(self.key, -size)

    async def settle_while(self, control: RunControl) -> None:
        while True:
            await asyncio.sleep(STDIN_SETTLE_SECONDS)  # a polling period: pipes send no news
            await self.settle(self.held - control.stdin_buffered())


async def _apply(control: RunControl, fields: Any, backlog: _StdinBacklog) -> None:
    command, value = fields.get("type"), fields.get("value", "")
    if command == Steer.STDIN:
        data = value.encode()
        backlog.held += len(data)
        if not control.write_stdin(data):  # closed, over, or full (a race between senders)
            await backlog.settle(len(data))
    elif command == Steer.EOF:
        control.close_stdin()
    elif command == Steer.SIGNAL:
        control.send_signal(int(value))
    elif command == Steer.CANCEL:
        control.cancel()


def replay(result: dict[str, Any]) -> list[LiveEvent]:
    """A finished run's events made from its stored row (the log is gone)."""
    events = [
        LiveEvent(
            REPLAY_IDS[0],
            EventKind.STATUS,
            {"status": result["status"], "created_by": str(result["created_by"])},
        )
    ]
    for i, kind in enumerate((EventKind.COMPILE, EventKind.STDOUT, EventKind.STDERR), 1):
        text = result["compile_output" if kind is EventKind.COMPILE else kind.value]
        if text:
            events.append(LiveEvent(REPLAY_IDS[i], kind, {"data": text}))
    events.append(LiveEvent(REPLAY_IDS[4], EventKind.RESULT, result))
    return events


def _resume(events: list[LiveEvent], after: str | None) -> list[LiveEvent]:
    if after is None:
        return events
    if after in REPLAY_IDS:  # resuming a replay: exactly what follows
        position = parse_id(after)
        return [e for e in events if e.id is None or parse_id(e.id) > position]
    # Resuming a live log that has expired since: what was missed is in the result.
    return [_lagged(None), events[-1]]


class RunPublisher:
    """The RunObserver of a run whose events go to `LiveRuns`: never blocks, decodes each
    stream as UTF-8 across chunk boundaries exactly as the stored output is decoded."""

    def __init__(
        self,
        live: LiveRuns,
        execution_id: uuid.UUID,
        *,
        session_id: uuid.UUID | None,
        created_by: uuid.UUID,
    ) -> None:
        self.live = live
        self.execution_id = execution_id
        self.session_id = session_id
        self.created_by = created_by
        self._decoders = {
            stream: codecs.getincrementaldecoder("utf-8")(errors="replace")
            for stream in OutputStream
        }

    def status(self, status: str, phase: str | None = None) -> None:
        self.live.status(
            self.execution_id,
            session_id=self.session_id,
            created_by=self.created_by,
            status=status,
            phase=phase,
        )

    def phase(self, phase: Phase) -> None:
        self.status("running", phase.value)

    def output(self, stream: OutputStream, data: bytes) -> None:
        text = self._decoders[stream].decode(data)
        if text:
            self._chunk(stream, text)

    def _chunk(self, stream: OutputStream, text: str) -> None:
        self.live.publish(
            self.execution_id,
            self.session_id,
            EventKind(stream.value),
            {"data": _storable(text)},
        )

    def finish(self, result: dict[str, Any]) -> None:
        for stream, decoder in self._decoders.items():
            rest = decoder.decode(b"", final=True)
            if rest:
                self._chunk(stream, rest)
        self.live.finish(self.execution_id, session_id=self.session_id, result=result)
