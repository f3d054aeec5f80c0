"""Red team: what each runtime adds. Debug listeners (Node's inspector, the JVM's attach
socket) must stay inside the run; compilers must read nothing of the host at compile time."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

from coderoom.sandbox import Engine, Status
from tests.sandbox.redteam_support import program, start
from tests.support.services import free_port, unavailable


def host_can_connect(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


async def test_nodes_inspector_listens_only_inside_the_run(engine: Engine) -> None:
    port = free_port()
    source = (
        f"require('inspector').open({port}, '0.0.0.0');\n"
        "console.log('inspector', require('inspector').url() ? 'open' : 'closed');\n"
        "setTimeout(() => {}, 30000);\n"
    )
    task, seen, control = start(engine, "javascript", source)
    try:
        await seen.until("inspector")
        reachable = host_can_connect(port)
    finally:
        control.cancel()
        result = await task
    assert "inspector open" in result.stdout  # the program got its listener...
    assert not reachable  # ...in its own network namespace only


async def test_the_jvm_sees_neither_the_hosts_tmp_nor_its_jvms(engine: Engine) -> None:
    """The JVM's attach files and perf data live in /tmp: the run's /tmp is its own, so a
    program can attach to no JVM of the host's and leaves nothing in the host's /tmp."""
    marker = Path(tempfile.mkstemp(prefix="coderoom-host-tmp-")[1])
    source = (
        "public class Main { public static void main(String[] a) throws Exception {\n"
        '  for (String n : new java.io.File("/tmp").list()) System.out.println(n);\n'
        '  System.out.println("listed"); Thread.sleep(30000); } }\n'
    )
    host_tmp_before = set(os.listdir("/tmp"))
    task, seen, control = start(engine, "java", source)
    try:
        await seen.until("listed")
        host_tmp_during = set(os.listdir("/tmp"))
    finally:
        control.cancel()
        result = await task
        marker.unlink()
    assert marker.name not in result.stdout
    new = {
        name for name in host_tmp_during - host_tmp_before if name.startswith((".java", "hsperf"))
    }
    assert new == set()


async def test_compilers_cannot_include_host_files(engine: Engine, tmp_path: Path) -> None:
    secret = tmp_path / "secret.h"
    secret.write_text('#error "host secret 9f3a reached the compiler"\n')
    secret.chmod(0o644)
    c = await engine.run("c", program("c", f'#include "{secret}"\nint main(void){{return 0;}}\n'))
    assert "9f3a" not in c.compile_output
    assert c.status is Status.COMPILE_ERROR
    shadow = await engine.run(
        "cpp", program("cpp", '#include "/etc/shadow"\n#include "/root/.bashrc"\nint main(){}\n')
    )
    assert "root:" not in shadow.compile_output
    assert shadow.status is Status.COMPILE_ERROR
    if engine.registry.get("rust") is None:
        unavailable("The rust runtime", "not installed: coderoom runtimes install")
    rust = await engine.run(
        "rust",
        program(
            "rust",
            f'const S: &str = include_str!("{secret}");\nfn main() {{ print!("{{}}", S); }}\n',
        ),
    )
    assert "9f3a" not in rust.compile_output + rust.stdout
    assert rust.status is Status.COMPILE_ERROR
