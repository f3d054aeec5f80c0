"""Build the worker container's seccomp profile from Docker's default one.

Docker's default profile lets `clone` create no namespaces and allows `unshare`, `mount`,
`umount2`, `pivot_root` and `setns` only to a process holding CAP_SYS_ADMIN. bubblewrap,
which builds the sandbox, needs exactly those calls, and needs them *without* that
capability (it uses an unprivileged user namespace). This adds one rule allowing them and
changes nothing else; every program in the sandbox still runs under coderoom's own, much
stricter filter (docs/SANDBOX.md).

    python3 deploy/docker/make_seccomp_profile.py DOCKER_DEFAULT_JSON \
        > deploy/docker/seccomp-worker.json

DOCKER_DEFAULT_JSON: moby's profiles/seccomp/default.json (Apache-2.0; on Debian, in the
golang-github-docker-docker-dev package under /usr/share/gocode/src/github.com/docker/docker/).
"""

from __future__ import annotations

import json
import sys

SANDBOX_SYSCALLS = ["clone", "unshare", "mount", "umount2", "pivot_root", "setns"]


def main(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        profile = json.load(handle)
    profile["syscalls"].append(
        {
            "names": SANDBOX_SYSCALLS,
            "action": "SCMP_ACT_ALLOW",
            "comment": "coderoom: bubblewrap builds the sandbox in an unprivileged user namespace",
        }
    )
    json.dump(profile, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
