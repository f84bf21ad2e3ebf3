"""Benchmark: packet filters for every node, derptool side by side with headscale's policy v2 engine.

Run: python bench/policy_bench.py [--sizes 1000,3000,10000] [--large-sizes 794,2372] [--repeat 3]
                                  [--validate-size 10000] [--peers-sizes 500,1000] [--hspolicy PATH]

The anchor is ``hspolicy`` (tests/support/go/cmd/hspolicy: headscale v0.27.1's engine as a Go program,
built by .ci/build-go-peers into tests/support/go/bin, or found on PATH), run on the same files in the
same minute, interleaved, best of --repeat. Both are whole processes that read the policy and the tailnet,
compile, and write every node's packet filter as JSON lines to /dev/null:
``derptool policy compile POLICY -t TAILNET --format json-line --no-peers`` (validation included) and
``hspolicy POLICY TAILNET``. Peak memory is each process's own maximum resident set (``wait4``).

Cases:
1. ``*`` -> ``*:*`` on generated tailnets of --sizes nodes.
2. A large company's policy (~1.2 MB, generated: there is no real one of that size in the repository):
   ~840 teams, each with a group of 8 people, a tag for its servers (owned by the group), a database host
   alias, a subnet route with an auto-approver, ACLs from the team to its servers and databases and from
   neighbouring teams to its web ports, SSH rules, and tests; company-wide rules for IT, monitoring
   and the exit nodes. headscale v0.27.1 has no ``grants``, so the same access is written as ACLs; the
   grants form (with its tests) is compiled by derptool alone (one line, no ratio). On tailnets of --large-sizes nodes.
   Two parts are shaped so that headscale finishes, taking about what it takes on a real policy of this size:
   the tags have no owners (headscale resolves every tag's owners again for each tag a rule names), and the
   headscale form leaves out the SSH rule to ``autogroup:self`` (headscale then compiles the whole policy
   again for every node).
3. ``derptool validate POLICY --tailnet`` of the grants form (its tests run) on --validate-size nodes,
   derptool alone (target: under 10 s).
4. Output size: ``*`` -> ``*:*`` with peers (the n² part) at --peers-sizes, derptool alone.

Targets: derptool's time <= 1.5 x headscale's + 0.5 s (interpreter start-up), peak memory < 1 GB at
10 000 nodes, time at most linear in output size (the printed exponent of time against bytes <= 1).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STAR = {"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}


# -- inputs ------------------------------------------------------------------------------------------


def tailnet(nodes: int, teams: int = 0, per_team: int = 8) -> dict[str, Any]:
    """A tailnet of *nodes* nodes: ~70 % people's devices (two each), the rest tagged servers of *teams*
    teams (``tag:teamN-srv``), every 97th server a subnet router, the last two exit nodes."""
    people = max(1, nodes * 7 // 10 // 2)
    users = [{"id": i + 1, "name": f"u{i}", "email": f"u{i}@example.com"} for i in range(people)]
    out: dict[str, Any] = {}
    for i in range(nodes):
        entry: dict[str, Any] = {
            "hostname": f"n{i}",
            "ipv4": f"100.{64 + (i >> 16) % 64}.{(i >> 8) & 255}.{i & 255}",
            "ipv6": f"fd7a:115c:a1e0::{i + 1:x}",
            "tags": [],
            "routable_ips": [],
            "approved_routes": [],
        }
        if i < people * 2:
            entry["user"] = f"u{i // 2}"
        else:
            team = i % max(1, teams)
            entry["tags"] = [f"tag:team{team}-srv" if teams else "tag:server"]
            if i % 97 == 0:
                entry["routable_ips"] = [f"10.{team // 250 % 250}.{team % 250}.0/24"]
            if i >= nodes - 2:
                entry["routable_ips"] = ["0.0.0.0/0", "::/0"]
                entry["approved_routes"] = ["0.0.0.0/0", "::/0"]
        out[f"n{i}"] = entry
    return {"users": users, "nodes": out}


def large_policy(teams: int = 840, people: int = 3500, per_team: int = 8) -> dict[str, Any]:
    """A large company's policy (see the module doc), ACLs and grants."""
    p: dict[str, Any] = {
        "groups": {},
        "tagOwners": {"tag:exit": ["group:it"], "tag:monitoring": ["group:it"]},
        "hosts": {},
        "acls": [],
        "grants": [],
        "ssh": [],
        "tests": [],
        "autoApprovers": {"routes": {}, "exitNode": ["tag:exit"]},
    }
    # people 1, 9, 17, ...: no test names one of them as its source (a test source is a team's first member)
    p["groups"]["group:it"] = [f"u{8 * k + 1}@example.com" for k in range(12)]
    for t in range(teams):
        team = f"team{t}"
        members = [f"u{(t * per_team + k) % people}@example.com" for k in range(per_team)]
        net = f"10.{t // 250 % 250}.{t % 250}"
        p["groups"][f"group:{team}"] = members
        p["groups"][f"group:{team}-leads"] = members[:2]
        # [] (admins only): headscale v0.27.1 resolves every tag's owners again each time a rule names a
        # tag, so owners on 840 tags would cost it minutes, which is not what it costs on a real policy
        p["tagOwners"][f"tag:{team}-srv"] = []
        p["hosts"][f"{team}-db"] = f"{net}.10"
        p["hosts"][f"{team}-net"] = f"{net}.0/24"
        p["autoApprovers"]["routes"][f"{net}.0/24"] = [f"tag:{team}-srv"]
        p["acls"].append(
            {
                "action": "accept",
                "src": [f"group:{team}"],
                "dst": [f"tag:{team}-srv:22,443,8080-8090", f"{team}-db:5432"],
            }
        )
        p["acls"].append({"action": "accept", "src": [f"group:{team}-leads"], "dst": [f"{team}-net:*"]})
        p["acls"].append(
            {
                "action": "accept",
                "src": [f"group:team{(t + 1) % teams}", f"group:team{(t + 7) % teams}"],
                "proto": "tcp",
                "dst": [f"tag:{team}-srv:443"],
            }
        )
        p["grants"].append(
            {"src": [f"tag:team{(t + 3) % teams}-srv"], "dst": [f"tag:{team}-srv"], "ip": ["tcp:9090", "udp:53"]}
        )
        p["ssh"].append(
            {"action": "accept", "src": [f"group:{team}"], "dst": [f"tag:{team}-srv"], "users": ["autogroup:nonroot"]}
        )
        if t % 10 == 0:
            p["ssh"].append(
                {"action": "check", "src": [f"group:{team}-leads"], "dst": [f"tag:{team}-srv"], "users": ["root"]}
            )
            p["tests"].append({"src": members[0], "accept": [f"tag:{team}-srv:443"], "deny": [f"tag:{team}-srv:3389"]})
    p["acls"].append({"action": "accept", "src": ["group:it"], "dst": ["*:*"]})
    p["acls"].append({"action": "accept", "src": ["tag:monitoring"], "dst": ["*:9100"]})
    p["acls"].append({"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:internet:*"]})
    p["ssh"].append({"action": "accept", "src": ["group:it"], "dst": ["autogroup:self"], "users": ["root"]})
    return p


def as_acls(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy with each ``ip`` grant written as the ACL that allows the same (headscale v0.27.1 has no
    grants)."""
    out = dict(policy)
    acls = list(policy.get("acls", []))
    for g in policy.get("grants", []):
        for entry in g["ip"]:
            proto, _, port = entry.rpartition(":")
            acl: dict[str, Any] = {"action": "accept", "src": g["src"], "dst": [f"{d}:{port}" for d in g["dst"]]}
            if proto:
                acl["proto"] = proto
            acls.append(acl)
    out["acls"] = acls
    # headscale v0.27.1 compiles the whole policy again for every node once any rule names autogroup:self
    # (minutes on this policy), which is not what a real fleet's policy of this size costs it
    out["ssh"] = [r for r in policy.get("ssh", []) if "autogroup:self" not in r["dst"]]
    out.pop("grants", None)
    out.pop("tests", None)  # nor tests
    return out


# -- running -----------------------------------------------------------------------------------------


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int, float]:
    """(wall seconds, peak resident set in bytes, bytes written, CPU seconds) of one process writing to a
    pipe. On a shared machine the CPU time (user + system) is the steadier figure."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    written = 0
    while chunk := proc.stdout.read(1 << 20):
        written += len(chunk)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {err.strip()[-500:]}")
    return seconds, usage.ru_maxrss * 1024, written, usage.ru_utime + usage.ru_stime


def find_hspolicy(given: str | None) -> str:
    for candidate in (given, str(ROOT / "tests/support/go/bin/hspolicy"), shutil.which("hspolicy")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise SystemExit("hspolicy not found: run .ci/build-go-peers (or pass --hspolicy PATH)")


def derptool_env() -> dict[str, str]:
    """The environment with byte-code caching on, as an installed derptool runs."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def side_by_side(
    label: str, policy: Path, net: Path, hspolicy: str, repeat: int, env: dict[str, str]
) -> tuple[float, int, int, float]:
    ours_cmd = [sys.executable, "-m", "derptool", "policy", "compile", str(policy), "-t", str(net)]
    ours_cmd += ["--format", "json-line", "--no-peers"]
    theirs_cmd = [hspolicy, str(policy), str(net)]
    ours: list[tuple[float, int, int, float]] = []
    theirs: list[tuple[float, int, int, float]] = []
    for _ in range(repeat):  # interleaved: a drift in machine speed hits both
        theirs.append(run(theirs_cmd))
        ours.append(run(ours_cmd, env))
    o = min(ours)
    t = min(theirs)
    o_cpu = min(r[3] for r in ours)
    t_cpu = min(r[3] for r in theirs)
    budget = 1.5 * t[0] + 0.5
    cpu_budget = 1.5 * t_cpu + 0.5
    print(
        f"{label}: derptool {o[0]:.3f} s wall {o_cpu:.3f} s CPU {o[1] / 2**20:.0f} MB ({o[2] / 2**20:.1f} MB out); "
        f"headscale {t[0]:.3f} s wall {t_cpu:.3f} s CPU {t[1] / 2**20:.0f} MB; ratio wall {o[0] / t[0]:.2f}x "
        f"CPU {o_cpu / t_cpu:.2f}x; target 1.5x+0.5 s: wall {'ok' if o[0] <= budget else 'MISSED'}, CPU "
        f"{'ok' if o_cpu <= cpu_budget else 'MISSED'}; memory < 1 GB: {'ok' if o[1] < 2**30 else 'MISSED'}"
    )
    return o


def exponent(points: list[tuple[float, int]]) -> str:
    (t1, b1), (t2, b2) = points[0], points[-1]
    return f"{math.log(t2 / t1) / math.log(b2 / b1):.2f}" if b2 != b1 and t1 > 0 else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1000,3000,10000")
    parser.add_argument("--large-sizes", default="794,2372")
    parser.add_argument("--peers-sizes", default="500,1000")
    parser.add_argument("--validate-size", type=int, default=10000, help="0: no validate --tailnet case")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hspolicy")
    args = parser.parse_args()
    hspolicy = find_hspolicy(args.hspolicy)
    env = derptool_env()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        star = d / "star.json"
        star.write_text(json.dumps(STAR))
        run([sys.executable, "-m", "derptool", "--version"], env)  # byte-code caches written once
        points = []
        for n in [int(s) for s in args.sizes.split(",") if s]:
            net = d / f"star{n}.json"
            net.write_text(json.dumps(tailnet(n)))
            o = side_by_side(f"* -> *:* {n} nodes", star, net, hspolicy, args.repeat, env)
            points.append((o[0], o[2]))
        if len(points) > 1:
            print(f"* -> *:* time against output size: exponent {exponent(points)} (1.0 = linear)")
        big = large_policy()
        grants = d / "large-grants.json"
        acls = d / "large-acls.json"
        grants.write_text(json.dumps(big, indent=2))
        acls.write_text(json.dumps(as_acls(big), indent=2))
        print(
            f"large policy: {grants.stat().st_size / 1e6:.2f} MB ({len(big['groups'])} groups, "
            f"{len(big['hosts'])} hosts, {len(big['tagOwners'])} tags, {len(big['acls'])} ACLs, "
            f"{len(big['grants'])} grants, {len(big['ssh'])} SSH rules, {len(big['tests'])} tests); as ACLs "
            f"{acls.stat().st_size / 1e6:.2f} MB"
        )
        for n in [int(s) for s in args.large_sizes.split(",") if s]:
            net = d / f"large{n}.json"
            net.write_text(json.dumps(tailnet(n, teams=840)))
            side_by_side(f"large policy (as ACLs) {n} nodes", acls, net, hspolicy, args.repeat, env)
            cmd = [sys.executable, "-m", "derptool", "policy", "compile", str(grants), "-t", str(net)]
            # --no-validate: the generated tests name people a small tailnet lacks (validation refuses them)
            g = min(
                run([*cmd, "--format", "json-line", "--no-peers", "--no-validate"], env) for _ in range(args.repeat)
            )
            print(f"large policy (grants) {n} nodes: derptool {g[0]:.3f} s {g[1] / 2**20:.0f} MB")
        if args.validate_size:
            n = args.validate_size
            net = d / f"large{n}.json"
            net.write_text(json.dumps(tailnet(n, teams=840)))
            cmd = [sys.executable, "-m", "derptool", "validate", str(grants), "--tailnet", str(net)]
            v = min(run(cmd, env) for _ in range(args.repeat))
            print(
                f"validate --tailnet (grants form, {len(big['tests'])} tests) {n} nodes: derptool {v[0]:.3f} s wall "
                f"{v[3]:.3f} s CPU {v[1] / 2**20:.0f} MB; target < 10 s: {'ok' if v[0] < 10 else 'MISSED'}"
            )
        peers = []
        for n in [int(s) for s in args.peers_sizes.split(",") if s]:
            net = d / f"peers{n}.json"
            net.write_text(json.dumps(tailnet(n)))
            cmd = [sys.executable, "-m", "derptool", "policy", "compile", str(star), "-t", str(net)]
            p = min(run([*cmd, "--format", "json-line"], env) for _ in range(args.repeat))
            peers.append((p[0], p[2]))
            print(
                f"* -> *:* with peers {n} nodes: derptool {p[0]:.3f} s {p[1] / 2**20:.0f} MB, {p[2] / 2**20:.1f} MB out"
            )
        if len(peers) > 1:
            print(f"with peers, time against output size: exponent {exponent(peers)} (1.0 = linear)")


if __name__ == "__main__":
    main()
