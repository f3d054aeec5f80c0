"""Red team: reaching any network. The host listens on loopback TCP, on an abstract unix
socket and on a unix socket file; a hostile program tries every address family and route it
has to them and to the machine's own services (PostgreSQL, Redis). The host's listeners
count what actually connected."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from coderoom.sandbox import Engine
from tests.sandbox.redteam_support import program


@dataclass
class Listeners:
    tcp_port: int
    abstract: str
    path: Path
    connections: list[str] = field(default_factory=list)


@pytest.fixture
async def listeners(tmp_path: Path) -> AsyncIterator[Listeners]:
    abstract = f"coderoom-redteam-{uuid.uuid4().hex[:8]}"
    spots = Listeners(0, abstract, tmp_path / "host.sock")

    def counter(kind: str):  # type: ignore[no-untyped-def]
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            spots.connections.append(kind)
            writer.close()

        return accepted

    tcp = await asyncio.start_server(counter("tcp"), "127.0.0.1", 0)
    spots.tcp_port = tcp.sockets[0].getsockname()[1]
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.bind("\0" + abstract)
    abstract_server = await asyncio.start_unix_server(counter("abstract"), sock=raw)
    file_server = await asyncio.start_unix_server(counter("file"), path=str(spots.path))
    spots.path.chmod(0o777)
    try:
        yield spots
    finally:
        for server in (tcp, abstract_server, file_server):
            server.close()
            await server.wait_closed()


async def test_no_listener_of_the_host_is_reachable(engine: Engine, listeners: Listeners) -> None:
    source = f"""
import socket
def attempt(name, family, address):
    try:
        s = socket.socket(family, socket.SOCK_STREAM); s.settimeout(1); s.connect(address)
        print("CONNECTED", name)
    except OSError as exc:
        print("blocked", name, exc.errno)
for host in ("127.0.0.1", "127.0.0.53", "0.0.0.0", "10.0.2.2", "169.254.169.254"):
    for port in ({listeners.tcp_port}, 5432, 6379, 4000, 22, 80):
        attempt(f"{{host}}:{{port}}", socket.AF_INET, (host, port))
for port in ({listeners.tcp_port}, 5432, 6379):
    attempt(f"[::1]:{{port}}", socket.AF_INET6, ("::1", port))
attempt("abstract", socket.AF_UNIX, "\\0{listeners.abstract}")
attempt("file", socket.AF_UNIX, "{listeners.path}")
for path in ("/run/postgresql/.s.PGSQL.5432", "/var/run/redis/redis-server.sock",
             "/tmp/.s.PGSQL.5432", "/run/systemd/private", "/var/run/docker.sock"):
    attempt(path, socket.AF_UNIX, path)
print(open("/proc/net/tcp").read().count(":"), "listening rows")
"""
    result = await engine.run("python", program("python", source))
    assert "CONNECTED" not in result.stdout, result.stdout
    assert result.stdout.count("blocked") == 30 + 3 + 2 + 5
    assert listeners.connections == []


async def test_only_loopback_exists_inside(engine: Engine) -> None:
    source = (
        "lines = open('/proc/net/dev').read().splitlines()[2:]\n"
        "print(sorted(line.split(':')[0].strip() for line in lines))\n"
        "print(open('/proc/net/route').read().count('\\n'))\n"
    )
    result = await engine.run("python", program("python", source))
    interfaces, routes = result.stdout.splitlines()
    assert interfaces == "['lo']"
    assert routes == "1"  # the header alone: no route anywhere
