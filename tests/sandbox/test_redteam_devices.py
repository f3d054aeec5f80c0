"""Red team: device nodes and /dev. A hostile program looks for device nodes to open, tries
to make its own, and uses /dev itself as storage."""

from __future__ import annotations

from coderoom.sandbox import Engine, Limits
from tests.sandbox.redteam_support import program

HARMLESS = {"null", "zero", "full", "random", "urandom", "shm", "fd", "stdin", "stdout", "stderr"}


async def test_only_harmless_devices_exist_and_none_can_be_made_or_reached(
    engine: Engine,
) -> None:
    source = (
        "ls -A /dev; echo --; "
        "for d in /dev/mem /dev/kmem /dev/port /dev/kmsg /dev/vda /dev/sda /dev/vsock "
        "/dev/fuse /dev/kvm /dev/tty /dev/console /dev/ptmx /dev/net/tun /dev/userfaultfd "
        "/dev/vhost-vsock /dev/loop-control /dev/cpu/0/msr /dev/hwrng; do "
        "  [ -e $d ] && echo EXISTS $d; done; "
        "mknod /tmp/vda b 254 0 2>/dev/null && echo MADE-BLOCK; "
        "mknod /work/mem c 1 1 2>/dev/null && echo MADE-CHAR; "
        "mkfifo /tmp/fifo 2>/dev/null && echo MADE-FIFO; "  # named pipes are allowed
        "python3 -c 'import os; os.mknod(\"/tmp/n\", 0o20600, os.makedev(1, 1))' 2>/dev/null "
        "  && echo PY-MKNOD; echo done"
    )
    result = await engine.run("bash", program("bash", source))
    listed, _, rest = result.stdout.partition("--\n")
    assert set(listed.split()) <= HARMLESS, listed
    # nothing EXISTS, no device is MADE; a FIFO (harmless, used by shell scripts) may be
    assert rest.split() == ["MADE-FIFO", "done"], rest


async def test_dev_is_not_a_writable_place(engine: Engine) -> None:
    """/dev is a tmpfs of bwrap's making with no size: if the program may write there, it
    stores files outside the workspace limit and replaces /dev/stdout and friends."""
    source = (
        "touch /dev/x 2>/dev/null && echo DEV-WRITABLE; "
        "rm -f /dev/stdout 2>/dev/null; [ -L /dev/stdout ] || echo REMOVED-STDOUT; "
        "mkdir /dev/pts 2>/dev/null && echo DEV-MKDIR; "
        "echo x > /dev/shm/ok && echo shm-ok"  # /dev/shm stays the writable one
    )
    result = await engine.run("bash", program("bash", source))
    assert result.stdout == "shm-ok\n", result.stdout


async def test_storage_is_bounded_by_the_workspace_limit(engine: Engine) -> None:
    """workspace_mb bounds what a program can store: /work, /tmp and /dev/shm are each that
    big and nothing else is writable. 3 MiB in each of the writable places with a 1 MiB
    workspace must fail in every one, /dev included."""
    places = ("/work", "/tmp", "/dev/shm", "/dev")
    writes = "; ".join(
        f"head -c 3M /dev/zero > {place}/fill 2>/dev/null && echo STORED {place}"
        for place in places
    )
    result = await engine.run(
        "bash", program("bash", f"{writes}; echo done"), Limits(workspace_mb=1, memory_mb=256)
    )
    assert result.stdout == "done\n", result.stdout
