"""The bwrap command line is a pure function: check what it asks the kernel for."""

from __future__ import annotations

from coderoom.sandbox.bwrap import Fds, bwrap_argv, launcher_argv
from coderoom.sandbox.languages import Language, LanguageSpec
from coderoom.sandbox.policy import CompileLimits, Limits

SPEC = LanguageSpec(
    id="toy",
    name="Toy",
    file_name="main.toy",
    executables=("/usr/bin/toy",),
    version_args=(),
    version_pattern="",
    run="exec {exe} {entry}",
    compile="{exe} -c {sources}",
    extensions=(".toy",),
)
LANGUAGE = Language(
    spec=SPEC, version="1", executable="/usr/bin/toy", binds=("/opt/toy",), path="/usr/bin"
)
FDS = Fds(
    compile_out=11, status=12, ack=13, seccomp=14, files=[(20, "main.toy"), (21, "lib/x.toy")]
)


def build() -> list[str]:
    return bwrap_argv(
        bwrap="/usr/bin/bwrap",
        language=LANGUAGE,
        limits=Limits(),
        compile_limits=CompileLimits(),
        fds=FDS,
        args=["--flag", "$(rm -rf /)"],
    )


def test_every_namespace_is_new_and_privileges_are_dropped() -> None:
    argv = build()
    for flag in (
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--disable-userns",
    ):
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert argv[argv.index("--uid") + 1] == "65534"
    assert argv[argv.index("--seccomp") + 1] == "14"


def test_only_runtime_paths_are_bound_and_read_only() -> None:
    argv = build()
    binds = [argv[i + 1] for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]
    assert "--bind" not in argv  # nothing of the host is writable
    assert "/usr" in binds
    assert "/opt/toy" in binds
    for secret in ("/etc/passwd", "/etc/shadow", "/root", "/home", "/var", "/proc", "/sys"):
        assert secret not in binds


def test_environment_is_fixed_and_minimal() -> None:
    argv = build()
    names = {argv[i + 1] for i, a in enumerate(argv) if a == "--setenv"}
    assert names == {"PATH", "HOME", "LANG", "TMPDIR"}


def test_workspace_is_a_size_limited_tmpfs_holding_the_files() -> None:
    argv = build()
    tmpfs = [i for i, a in enumerate(argv) if a == "--tmpfs"]
    assert [argv[i + 1] for i in tmpfs] == ["/tmp", "/work"]
    assert all(argv[i - 2] == "--size" or argv[i - 4] == "--size" for i in tmpfs)
    assert argv[argv.index("20") - 1 : argv.index("20") + 2] == ["--file", "20", "/work/main.toy"]
    assert "/work/lib" in argv


def test_program_arguments_are_data_not_shell() -> None:
    argv = build()
    assert argv[-2:] == ["--flag", "$(rm -rf /)"]
    script = argv[argv.index("-c", argv.index("--")) + 1]
    assert "rm -rf" not in script
    assert '"$@"' in script


def test_launcher_joins_cgroups_before_exec() -> None:
    argv = launcher_argv(
        cgroup_procs=["/sys/fs/cgroup/pids/x/cgroup.procs"], limits=Limits(), inner=["bwrap"]
    )
    script = argv[2]
    assert script.index("cgroup.procs") < script.index("exec")
    assert "ulimit -c 0" in script
    assert argv[-1] == "bwrap"
