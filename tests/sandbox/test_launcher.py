"""The real launcher binary: what it guarantees before anything of a run starts."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from coderoom.sandbox.launcher import ensure_built

SANDBOX_UID = 2_000_000_077
AS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0 and not os.environ.get("CI"), reason="needs root to change uid"
)


def launch(*options: str, command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        [ensure_built(), *options, "--", *command],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


@AS_ROOT
def test_drops_to_the_given_uid_with_no_groups_and_no_new_privileges() -> None:
    done = launch(
        "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
        command=["/bin/sh", "-c", "grep -E '^(Uid|Gid|Groups|NoNewPrivs|CapEff):' /proc/self/status"],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    status = dict(line.split(":", 1) for line in done.stdout.splitlines())
    assert status["Uid"].split() == [str(SANDBOX_UID)] * 4
    assert status["Gid"].split() == [str(SANDBOX_UID)] * 4
    assert status["Groups"].strip() == ""
    assert status["NoNewPrivs"].strip() == "1"
    assert int(status["CapEff"], 16) == 0


def test_refuses_to_start_anything_as_host_root() -> None:
    attempts = [["--uid", "0", "--gid", "0"], ["--uid", "5000", "--gid", "0"]]
    if os.geteuid() == 0:
        attempts.append([])  # a root caller that forgot to name the run's uid
    for options in attempts:
        done = launch(*options, command=["/bin/echo", "started"])
        assert done.returncode == 125, options
        assert "started" not in done.stdout


@AS_ROOT
def test_closes_every_inherited_descriptor_but_the_ones_named(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("host secret")
    secret.chmod(0o600)
    leaked = os.open(secret, os.O_RDONLY)  # inheritable, as a careless parent would leave it
    kept_r, kept_w = os.pipe()
    try:
        os.set_inheritable(leaked, True)
        os.set_inheritable(kept_r, True)
        done = launch(
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--keep-fd", str(kept_r),
            command=["/bin/sh", "-c", f"ls /proc/self/fd; cat <&{leaked}"],
            close_fds=False,
        )  # fmt: skip
    finally:
        for fd in (leaked, kept_r, kept_w):
            os.close(fd)
    listed = set(done.stdout.split())
    assert "host secret" not in done.stdout
    assert str(leaked) not in listed
    assert str(kept_r) in listed
    # 0-2, the kept pipe, and the directory `ls` itself opened.
    assert len(listed) == 5


@AS_ROOT
def test_resets_signals_the_service_ignores() -> None:
    """Python ignores SIGPIPE; a program must start with default dispositions and an empty
    mask, or `yes | head` style programs and file-size limits behave differently."""
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        done = launch(
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            command=["/bin/sh", "-c", "grep -E '^(SigIgn|SigBlk):' /proc/self/status"],
            restore_signals=False,
        )  # fmt: skip
    finally:
        signal.signal(signal.SIGXFSZ, previous)
    fields = dict(line.split(":", 1) for line in done.stdout.splitlines())
    standard = (1 << 31) - 1  # signals 1-31; from 32 on they belong to the C library
    assert int(fields["SigIgn"], 16) & standard == 0
    assert int(fields["SigBlk"], 16) & standard == 0


@AS_ROOT
def test_sets_rlimits_before_dropping_privileges() -> None:
    done = launch(
        "--rlimit", "core=0", "--rlimit", "nofile=77", "--rlimit", "cpu=3:4",
        "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
        command=["/bin/sh", "-c", "ulimit -c; ulimit -n; ulimit -St; ulimit -Ht"],
    )  # fmt: skip
    assert done.stdout.split() == ["0", "77", "3", "4"]


def test_bad_options_fail_closed_before_running_anything() -> None:
    for options in (["--rlimit", "bogus=1"], ["--uid", "12"], ["--keep-fd", "x"], ["--what", "1"]):
        done = launch(*options, command=["/bin/echo", "started"])
        assert done.returncode == 125, options
        assert "started" not in done.stdout
