"""Benchmark: ``omit --region us --apply`` against ``validate`` on the same generated, commented policy.

Run: python bench/apply_bench.py [--size-mb 1 10] [--repeat 3]

For each size, a realistic policy is written to a temporary directory: groups, hosts, tagOwners, acls,
grants and ssh rules with comments (a line comment before many rules, same-line comments after members,
a block comment at the top) and an existing ``derpMap`` (null regions with comments and a custom region).
Both commands then run the way a user runs them, each in its own child process
(``python -m derptool ...``, best of ``--repeat``), one after the other, so the time ratio compares like
with like on the same machine in the same run. Goal: ``omit --apply`` <= 2x ``validate``.

Memory: the peak resident set of each child (``ru_maxrss`` from ``os.wait4``) includes the interpreter
and its imports, which do not grow with the file, so the figure compared with the file size is the
peak over a baseline run of the same command on a tiny policy. A second figure is the peak of the
Python allocations (``tracemalloc``) of the library call :func:`derptool.edit.omit.omit_policy` alone,
measured in a child process. Goal: peak memory <= 10x the file size.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMAND_OMIT = ["omit", "--region", "us", "--map", "snapshot", "--apply"]
COMMAND_VALIDATE = ["validate"]


ENTRY_BUDGET = 95_000
"""Object members and array elements the generated policy stays under: derptool reads at most 100 000
(``fileio.MAX_ENTRIES``), so a large policy is padded with comments (team notes) rather than more rules."""
ENTRIES_PER_TEAM = 29
"""Object members and array elements each team adds (its group, host, tag owner, ACL, grant and SSH rule)."""
BYTES_PER_TEAM = 780
"""About the bytes each team adds before any padding."""


def _notes(team: str, lines: int) -> list[str]:
    """*lines* comment lines about *team*, as large policies carry them (owners, reviews, tickets)."""
    text = [
        f"\t\t// {team}: owned by the {team} leads; on call: #{team}-oncall; runbook: https://wiki.example.com/{team}",
        f"\t\t// {team}: access reviewed every quarter (ticket SEC-{len(team) * 977}); widen only with a review.",
    ]
    return [text[k % 2] for k in range(lines)]


def generate(target_bytes: int) -> bytes:
    """A commented HuJSON policy of about *target_bytes*, tab-indented like Tailscale's admin console (padded
    with comments past :data:`ENTRY_BUDGET` entries' worth of rules)."""
    teams = target_bytes // BYTES_PER_TEAM + 1
    pad = max(0, (target_bytes // max(1, min(teams, ENTRY_BUDGET // ENTRIES_PER_TEAM)) - BYTES_PER_TEAM) // 100)
    head = [
        "// Tailnet policy for example.com (generated for bench/apply_bench.py).",
        "/* Reviewed quarterly by the network team.",
        " * Do not edit by hand outside of review. */",
        "{",
        "\t// DERP relays: Japan removed (legal asked); our own relay in Frankfurt.",
        '\t"derpMap": {',
        '\t\t"Regions": {',
        '\t\t\t"7": null, // tok',
        "\t\t\t// Our own relay.",
        '\t\t\t"900": {"RegionID": 900, "RegionCode": "fra-own", "RegionName": "Frankfurt (own)",',
        '\t\t\t\t"Nodes": [{"Name": "900a", "RegionID": 900, "HostName": "derp1.example.com"}]},',
        "\t\t},",
        "\t},",
        "",
    ]
    groups: list[str] = []
    hosts: list[str] = []
    owners: list[str] = []
    acls: list[str] = []
    grants: list[str] = []
    ssh: list[str] = []
    size = sum(len(x) + 1 for x in head)
    i = 0
    while size < target_bytes:
        team = f"team{i}"
        net = f"10.{i // 250 % 250}.{i % 250}"
        block = {
            "groups": [
                f'\t\t"group:{team}": {json.dumps([f"user{i}-{k}@example.com" for k in range(4)])},'
                + (f" // {team} engineers" if i % 3 == 0 else "")
            ],
            "hosts": [*_notes(team, pad), f'\t\t"{team}-db": "{net}.10", // database of {team}'],
            "owners": [f'\t\t"tag:{team}-srv": ["group:{team}"],'],
            "acls": ([f"\t\t// {team}: engineers reach their servers and database."] if i % 2 == 0 else [])
            + [
                f'\t\t{{"action": "accept", "src": ["group:{team}"], "dst": ["tag:{team}-srv:22,443", '
                f'"{team}-db:5432"]}},'
            ],
            "grants": [
                "\t\t{",
                f"\t\t\t// {team} web access",
                f'\t\t\t"src": ["group:{team}"],',
                f'\t\t\t"dst": ["tag:{team}-srv"],',
                '\t\t\t"ip":  ["tcp:443", "udp:53"], /* https and dns */',
                "\t\t},",
            ],
            "ssh": [
                f'\t\t{{"action": "check", "src": ["group:{team}"], "dst": ["tag:{team}-srv"], '
                f'"users": ["root", "autogroup:nonroot"], "checkPeriod": "12h"}},'
            ],
        }
        for key, lines in block.items():
            {"groups": groups, "hosts": hosts, "owners": owners, "acls": acls, "grants": grants, "ssh": ssh}[
                key
            ].extend(lines)
            size += sum(len(x) + 1 for x in lines)
        i += 1
    out = list(head)

    def section(name: str, comment: str, opener: str, closer: str, lines: list[str]) -> None:
        out.extend([f"\t// {comment}", f'\t"{name}": {opener}', *lines, f"\t{closer},", ""])

    section("groups", "Teams.", "{", "}", groups)
    section("hosts", "Named addresses.", "{", "}", hosts)
    section("tagOwners", "Who may tag servers.", "{", "}", owners)
    section("acls", "Access rules.", "[", "]", acls)
    section("grants", "Grants.", "[", "]", grants)
    section("ssh", "Tailscale SSH.", "[", "]", ssh)
    out.pop()
    out.append("}")
    return ("\n".join(out) + "\n").encode()


def run_child(args: list[str]) -> tuple[float, int, int]:
    """``(wall seconds, exit code, peak RSS in bytes)`` of ``python -m derptool ARGS``."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "derptool", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    code = proc.returncode
    if code not in (0, 1):
        raise SystemExit(f"derptool {' '.join(args)} failed ({code}): {err.decode(errors='replace')}")
    return wall, code, usage.ru_maxrss * 1024  # Linux reports KiB


_TRACE = """
import sys, tracemalloc
from pathlib import Path
from derptool.derpmap.sources import load_snapshot
from derptool.edit.omit import omit_policy
src = Path(sys.argv[1]).read_bytes()
base = load_snapshot().derp_map
tracemalloc.start()
omit_policy(src, base, omit=["us"], file=sys.argv[1])
print(tracemalloc.get_traced_memory()[1])
"""


def _count_comments(path: Path) -> int:
    """How many ``//`` and ``/*`` *path* holds, read in pieces (this process stays small)."""
    count, carry = 0, b""
    with open(path, "rb") as fh:
        while piece := fh.read(1 << 20):
            piece = carry + piece
            count += piece.count(b"//") + piece.count(b"/*")
            carry = b"/" if piece.endswith(b"/") and not piece.endswith(b"//") else b""  # a pair split in two
    return count


def traced_peak(path: Path) -> int:
    """Peak traced Python allocations of the omit library call on *path* (in a child process)."""
    out = subprocess.run([sys.executable, "-c", _TRACE, str(path)], check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def write_policy(path: Path, size_bytes: int) -> None:
    """Generate the policy in a child process, so that this process stays small: on Linux a child's
    ``ru_maxrss`` can include the pages of the parent it was forked from."""
    subprocess.run([sys.executable, __file__, "--generate", str(path), str(size_bytes)], check=True)


def measure(size_mb: float, repeat: int, work: Path) -> None:
    policy = work / f"policy-{size_mb:g}mb.hujson"
    tiny = work / "tiny.hujson"
    write_policy(tiny, 1)
    write_policy(policy, int(size_mb * 1_000_000))
    # this process never holds the policy: a child's ru_maxrss counts the pages of the process that spawned
    # it (until its exec), which would inflate the tiny baseline and hide the growth
    t_validate = min(run_child([*COMMAND_VALIDATE, str(policy)])[0] for _ in range(repeat))
    times, rss = [], 0
    for _ in range(repeat):
        target = work / "target.hujson"
        shutil.copyfile(policy, target)
        wall, _, peak = run_child([*COMMAND_OMIT, str(target)])
        times.append(wall)
        rss = max(rss, peak)
        assert not filecmp.cmp(target, policy, shallow=False), "omit --apply wrote nothing"
    n = policy.stat().st_size
    comments = _count_comments(policy)
    t_omit = min(times)
    shutil.copyfile(tiny, work / "target.hujson")
    _, _, rss_base = run_child([*COMMAND_OMIT, str(work / "target.hujson")])
    _, _, rss_validate = run_child([*COMMAND_VALIDATE, str(policy)])
    traced = traced_peak(policy)
    print(f"policy: {n / 1e6:.2f} MB, {comments} comments")
    print(f"  validate:            {t_validate:6.2f} s   peak RSS {rss_validate / 1e6:6.0f} MB")
    print(
        f"  omit --apply:        {t_omit:6.2f} s   peak RSS {rss / 1e6:6.0f} MB (tiny policy: {rss_base / 1e6:.0f} MB)"
    )
    ratio = t_omit / t_validate
    grown = (rss - rss_base) / n
    print(f"  time ratio:          {ratio:6.2f}x validate        goal <= 2x:  {'met' if ratio <= 2 else 'MISSED'}")
    print(f"  RSS over baseline:   {grown:6.2f}x file size       goal <= 10x: {'met' if grown <= 10 else 'MISSED'}")
    print(f"  traced peak (lib):   {traced / n:6.2f}x file size")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--generate", nargs=2, metavar=("PATH", "BYTES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        Path(args.generate[0]).write_bytes(generate(int(args.generate[1])))
        return
    with tempfile.TemporaryDirectory(prefix="derptool-apply-bench-") as tmp:
        for size in args.size_mb:
            measure(size, args.repeat, Path(tmp))


if __name__ == "__main__":
    main()
