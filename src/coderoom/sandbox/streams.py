"""Reading a run's output: capped, delivered as it arrives, never blocking the program.

Each output pipe is read by an asyncio protocol (no StreamReader in between: one callback
per chunk the kernel hands us). A `CappedOutput` keeps at most `limit` bytes and passes
each kept chunk to the run's observer the moment it arrives; past the cap it keeps
nothing more, flags `truncated` and tells the engine, which stops the run. Reading never
pauses, so a program is never blocked because nobody downstream is reading.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class CappedOutput:
    """One output stream of a run: what was kept, and whether more was refused."""

    limit: int
    on_chunk: Callable[[bytes], None] | None = None
    on_overflow: Callable[[], None] | None = None
    data: bytearray = field(default_factory=bytearray)
    truncated: bool = False

    def feed(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if len(chunk) > room:
            if room > 0:
                self._keep(chunk[:room])
            if not self.truncated:
                self.truncated = True
                if self.on_overflow is not None:
                    self.on_overflow()
            return
        self._keep(chunk)

    def _keep(self, chunk: bytes) -> None:
        self.data += chunk
        if self.on_chunk is not None:
            self.on_chunk(chunk)


class _PipeProtocol(asyncio.Protocol):
    def __init__(self, sink: CappedOutput, done: asyncio.Future[None]) -> None:
        self.sink = sink
        self.done = done

    def data_received(self, data: bytes) -> None:
        self.sink.feed(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def read_pipe(
    fd: int, sink: CappedOutput
) -> tuple[asyncio.ReadTransport, asyncio.Future[None]]:
    """Start reading `fd` (ours to close: the transport owns it) into `sink`; the future
    resolves at end of file."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    transport, _ = await loop.connect_read_pipe(
        lambda: _PipeProtocol(sink, done), os.fdopen(fd, "rb", buffering=0)
    )
    return transport, done


class StdinWriter:
    """The program's standard input: the request's stdin, then (interactive runs) whatever
    is written until it is closed. A program that stops reading cannot stall us: writes
    are buffered by the transport and dropped when the program has gone."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport

    @classmethod
    async def open(cls, fd: int) -> StdinWriter:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(fd, "wb", buffering=0)
        )
        return cls(transport)

    @property
    def closed(self) -> bool:
        return self._transport.is_closing()

    def write(self, data: bytes) -> bool:
        if self._transport.is_closing():
            return False
        self._transport.write(data)
        return True

    def buffered(self) -> int:
        return self._transport.get_write_buffer_size()

    def close(self) -> None:
        """End of input (the program reads EOF once what was written is drained)."""
        if not self._transport.is_closing():
            self._transport.close()

    def abort(self) -> None:
        """Drop whatever is still buffered (the run is over)."""
        if not self._transport.is_closing():
            self._transport.abort()
