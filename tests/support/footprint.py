"""What the real node leaves on the machine: processes, links, routes, firewall rules, mounts,
network namespaces, cgroups and directories. `hack/node.sh down` must bring it back to what it
was before `up`.

    python -m tests.support.footprint save FILE      # before the cluster starts
    python -m tests.support.footprint compare FILE   # after it stopped: exits 1 on a difference
    python -m tests.support.footprint clean          # exits 1 when anything of the node is left
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.support.node import NODE_STATE, real_node

# Paths the kubelet and containerd use outside the node's own directories.
OUTSIDE_PATHS = (
    "/var/lib/kubelet",
    "/run/containerd",
    "/var/log/pods",
    "/var/log/containers",
    "/opt/containerd",
    "/etc/cni/net.d/10-taskmanager.conflist",
)
NODE_PROGRAMS = ("kubelet", "kube-proxy", "containerd", "containerd-shim", "coredns")


def _lines(*argv: str) -> list[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    return [line.rstrip() for line in result.stdout.splitlines() if line.strip()]


def _firewall() -> list[str]:
    """The nftables ruleset without its counters and handles, which change on their own."""
    ruleset = "\n".join(_lines("nft", "list", "ruleset"))
    ruleset = re.sub(r" counter packets \d+ bytes \d+", " counter", ruleset)
    return [line.strip() for line in ruleset.splitlines()]


def _processes() -> list[str]:
    """Processes of the node: its programs, and anything running from its directories."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        command = " ".join(part.decode(errors="replace") for part in argv if part)
        program = Path(command.split(" ", 1)[0]).name if command else ""
        if program in NODE_PROGRAMS or str(NODE_STATE) in command:
            found.append(command)
    return sorted(found)


def _cgroups() -> list[str]:
    return sorted(str(path) for path in Path("/sys/fs/cgroup").glob("*/kubepods*"))


def snapshot() -> dict[str, list[str]]:
    node = real_node()
    return {
        "processes": _processes(),
        "links": sorted(line.split()[0] for line in _lines("ip", "-br", "link")),
        "routes": sorted(_lines("ip", "route", "show", "table", "all")),
        "firewall": _firewall(),
        "mounts": sorted(
            line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
        ),
        "network namespaces": sorted(_lines("ls", "/run/netns")),
        "cgroups": _cgroups(),
        "paths": sorted(p for p in (*OUTSIDE_PATHS, str(NODE_STATE)) if Path(p).exists()),
        "bridge": [node.bridge] if Path(f"/sys/class/net/{node.bridge}").exists() else [],
    }


def traces(found: dict[str, list[str]]) -> list[str]:
    """Whatever in a snapshot is the node's: nothing, once it is down."""
    node = real_node()
    marks = (node.bridge, node.nft_table, "KUBE-", str(NODE_STATE), node.kwok_pod_cidr, "kubepods")
    return [
        f"{kind}: {item}"
        for kind, items in found.items()
        for item in items
        if kind in {"processes", "bridge"} or any(mark in item for mark in marks)
    ]


def differences(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    """Each line that one snapshot has and the other has not, named by its kind."""
    found = []
    for kind in sorted(before.keys() | after.keys()):
        old, new = set(before.get(kind, [])), set(after.get(kind, []))
        found += [f"{kind}: left behind: {item}" for item in sorted(new - old)]
        found += [f"{kind}: gone: {item}" for item in sorted(old - new)]
    return found


def main(argv: list[str]) -> int:
    if argv == ["clean"]:
        found = traces(snapshot())
        for line in found:
            print(f"[footprint] left behind: {line}", file=sys.stderr)
        return 1 if found else 0
    if len(argv) != 2 or argv[0] not in ("save", "compare"):
        print(__doc__, file=sys.stderr)
        return 2
    command, file = argv
    if command == "save":
        Path(file).write_text(json.dumps(snapshot(), indent=1))
        return 0
    found = differences(json.loads(Path(file).read_text()), snapshot())
    for line in found:
        print(f"[footprint] {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
