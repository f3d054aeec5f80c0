"""The sandbox's command lines are pure functions: check what they ask the kernel for."""

from __future__ import annotations

from coderoom.sandbox.bwrap import (
    Fds,
    HostLimits,
    ProcLayout,
    bwrap_args,
    compiled_script,
    launcher_argv,
)
from coderoom.sandbox.languages import Language, LanguageSpec
from coderoom.sandbox.policy import CompileLimits, Limits

TOY = LanguageSpec(
    id="toy",
    name="Toy",
    file_name="main.toy",
    executables=("/usr/bin/toy",),
    run=("{exe}", "{entry}"),
    extensions=(".toy",),
)
COMPILED_TOY = LanguageSpec(
    id="ctoy",
    name="Compiled toy",
    file_name="main.toy",
    executables=("/usr/bin/toyc",),
    compile=(("{exe}", "-o", "main", "{sources}"),),
    run=("./main",),
    extensions=(".toy",),
)
PROC = ProcLayout(
    masked_files=("/proc/kcore", "/proc/keys", "/proc/kallsyms"),
    masked_dirs=("/proc/acpi",),
    read_only=("/proc/sys", "/proc/sysrq-trigger"),
)
ARGS = ["--flag", "$(rm -rf /)"]


def language(spec: LanguageSpec = TOY) -> Language:
    return Language(
        spec=spec, version="1", executable=spec.executables[0], binds=("/opt/toy",), path="/usr/bin"
    )


def fds(*, compiled: bool = False) -> Fds:
    return Fds(
        compile_out=11 if compiled else None,
        status=12 if compiled else None,
        ack=13 if compiled else None,
        seccomp=14,
        files=[(20, "main.toy"), (21, "lib/x.toy")],
        script=15 if compiled else None,
    )


def build(*, compiled: bool = False) -> tuple[list[str], list[str]]:
    return bwrap_args(
        language=language(COMPILED_TOY if compiled else TOY),
        limits=Limits(),
        compile_limits=CompileLimits(),
        fds=fds(compiled=compiled),
        args=ARGS,
        proc=PROC,
    )


def pairs(argv: list[str], flag: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == flag]


def test_every_namespace_is_new_and_privileges_are_dropped() -> None:
    options, _ = build()
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
        assert flag in options
    assert options[options.index("--cap-drop") + 1] == "ALL"
    assert options[options.index("--uid") + 1] == "65534"
    assert options[options.index("--seccomp") + 1] == "14"


def test_only_runtime_paths_are_bound_and_read_only() -> None:
    options, _ = build()
    assert "--bind" not in options  # nothing of the host is writable
    sources = {source for source, _ in pairs(options, "--ro-bind")}
    assert {"/usr", "/opt/toy"} <= sources
    for secret in ("/etc/passwd", "/etc/shadow", "/root", "/home", "/var", "/sys", "/proc"):
        assert secret not in sources
    assert not any(target.startswith("/sys") for _, target in pairs(options, "--ro-bind"))


def test_no_dev_mount_so_no_nested_namespace_maps_to_root() -> None:
    """`--dev` needs devpts, for which bwrap maps the sandbox user to root of an inner
    namespace; the device nodes are bound one by one instead."""
    options, _ = build()
    assert "--dev" not in options
    devices = {source for source, _ in pairs(options, "--dev-bind")}
    assert devices == {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}


def test_proc_is_masked_and_its_kernel_knobs_read_only() -> None:
    options, _ = build()
    binds = pairs(options, "--ro-bind")
    for path in PROC.read_only:
        assert (path, path) in binds  # a read-only bind of itself
    for path in PROC.masked_files:
        assert ("/dev/null", path) in binds
    tmpfs = [options[i + 1] for i, a in enumerate(options) if a == "--tmpfs"]
    remounted = [options[i + 1] for i, a in enumerate(options) if a == "--remount-ro"]
    assert "/proc/acpi" in tmpfs
    assert "/proc/acpi" in remounted
    # Masks come after the proc mount they cover.
    assert options.index("--proc") < options.index("/proc/kcore")


def test_environment_is_fixed_and_minimal() -> None:
    options, _ = build()
    names = {options[i + 1] for i, a in enumerate(options) if a == "--setenv"}
    assert names == {"PATH", "HOME", "LANG", "TMPDIR"}


def test_workspace_is_a_size_limited_tmpfs_holding_the_files() -> None:
    options, _ = build()
    tmpfs = [i for i, a in enumerate(options) if a == "--tmpfs" and options[i + 1] != "/dev"]
    mounts = [options[i + 1] for i in tmpfs if not options[i + 1].startswith("/proc")]
    assert mounts == ["/dev/shm", "/tmp", "/work"]
    for i in tmpfs:
        if options[i + 1] in mounts:
            assert "--size" in options[i - 4 : i]
    at = options.index("20")
    assert options[at - 1 : at + 2] == ["--file", "20", "/work/main.toy"]
    assert "/work/lib" in options


def test_interpreted_command_runs_the_runtime_directly_with_args_as_data() -> None:
    _, command = build()
    assert command == ["/usr/bin/toy", "main.toy", *ARGS]


def test_compiled_command_reads_its_supervisor_from_a_descriptor() -> None:
    """No script on any command line: /proc/*/cmdline shows the descriptor, not the script."""
    _, command = build(compiled=True)
    assert command == ["/bin/bash", "/proc/self/fd/15", *ARGS]
    script = compiled_script(
        language=language(COMPILED_TOY),
        limits=Limits(),
        compile_limits=CompileLimits(),
        fds=fds(compiled=True),
    )
    lines = script.splitlines()
    assert lines[1] == "exec 15<&-"  # closes its own copy before anything else runs
    assert "rm -rf" not in script
    assert lines[-1] == 'exec ./main "$@"'
    assert "/usr/bin/toyc -o main main.toy lib/x.toy" in script


def test_launcher_joins_cgroups_drops_to_the_run_uid_and_hides_bwraps_options() -> None:
    argv = launcher_argv(
        launcher="/opt/coderoom-launch",
        bwrap="/usr/bin/bwrap",
        args_fd=9,
        command=["/usr/bin/toy", "main.toy"],
        keep_fds=[14, 20],
        cgroup_procs=["/sys/fs/cgroup/pids/x/cgroup.procs"],
        limits=HostLimits(cpu_s=6, open_files=256, file_size_kb=1024),
        ids=(2_000_000_003, 2_000_000_003),
    )
    split = argv.index("--")
    launcher_options = argv[1:split]
    assert launcher_options[launcher_options.index("--cgroup") + 1].endswith("cgroup.procs")
    assert launcher_options[launcher_options.index("--uid") + 1] == "2000000003"
    assert launcher_options[launcher_options.index("--gid") + 1] == "2000000003"
    kept = {launcher_options[i + 1] for i, a in enumerate(launcher_options) if a == "--keep-fd"}
    assert kept == {"9", "14", "20"}
    rlimits = {launcher_options[i + 1] for i, a in enumerate(launcher_options) if a == "--rlimit"}
    assert {"core=0", "cpu=6", "nofile=256", f"fsize={1024 * 1024}"} <= rlimits
    # whatever the service itself was allowed: no real-time or raised priority for programs
    assert {"rtprio=0", "nice=0"} <= rlimits
    assert argv[split + 1 :] == [
        "/usr/bin/bwrap", "--args", "9", "--", "/usr/bin/toy", "main.toy",
    ]  # fmt: skip


def test_launcher_without_ids_keeps_our_unprivileged_identity() -> None:
    argv = launcher_argv(
        launcher="/opt/coderoom-launch",
        bwrap="/usr/bin/bwrap",
        args_fd=9,
        command=["x"],
        keep_fds=[],
        cgroup_procs=[],
        limits=HostLimits(
            cpu_s=6, open_files=256, file_size_kb=1024, address_space_mb=256, processes=72
        ),
        ids=None,
    )
    assert "--uid" not in argv
    assert "--gid" not in argv
    assert f"as={256 * 1024 * 1024}" in argv
    assert "nproc=72" in argv
