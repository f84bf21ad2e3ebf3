"""Benchmark: compile a policy for every node of a tailnet.

Run: python bench/policy_bench.py [--sizes 1000,3000,10000] [--groups 500] [--rules 1000]

1. A recorded 15-node tailnet (tests/data/tailscale-captures/grant.json) compiled by the real command
   (``derptool policy compile --format json``, a new process, start-up included), side by side with the
   start-up alone (``derptool --version``) as the anchor. Goal: < 0.3 s.
2. Generated tailnets (users in groups, tagged servers, subnet routers, an exit node) with --groups groups
   and --rules grants/ACLs/SSH rules, compiled for every node (packet filter, SSH policy, peers with their
   AllowedIPs). Goal: 10 000 nodes < 30 s. Prints the scaling exponent b of t ~ n^b between the sizes.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from derptool.policy.engine import compile_policy
from derptool.policy.engine.tailnet import from_topology

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "tests" / "data" / "tailscale-captures" / "grant.json"


def generate(nodes: int, groups: int, rules: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A tailnet of *nodes* nodes and a policy with *groups* groups and *rules* rules."""
    users = max(1, nodes * 7 // 10 // 2)  # ~70 % user devices, two per user
    tags = max(1, groups // 2)
    topo_users = [{"id": i + 1, "name": f"u{i}", "email": f"u{i}@example.com"} for i in range(users)]
    topo_nodes: dict[str, Any] = {}
    for i in range(nodes):
        v4 = f"100.{64 + (i >> 16) % 64}.{(i >> 8) & 255}.{i & 255}"
        entry: dict[str, Any] = {
            "hostname": f"n{i}",
            "ipv4": v4,
            "ipv6": f"fd7a:115c:a1e0::{i + 1:x}",
            "routable_ips": [],
            "approved_routes": [],
        }
        if i < users * 2:
            entry["tags"] = []
            entry["user"] = f"u{i // 2}"
        else:
            entry["tags"] = [f"tag:svc{i % tags}"]
            if i % 97 == 0:
                route = f"10.{(i >> 8) & 255}.{i & 255}.0/24"
                entry["routable_ips"] = entry["approved_routes"] = [route]
            if i == nodes - 1:
                entry["routable_ips"] = entry["approved_routes"] = ["0.0.0.0/0", "::/0"]
        topo_nodes[f"n{i}"] = entry
    group_size = max(1, users // groups)
    policy: dict[str, Any] = {
        "groups": {
            f"group:g{g}": [f"u{(g * group_size + k) % users}@example.com" for k in range(group_size)]
            for g in range(groups)
        },
        "tagOwners": {f"tag:svc{t}": [] for t in range(tags)},
        "grants": [],
        "acls": [],
        "ssh": [],
    }
    for r in range(rules):
        g, t = r % groups, (r * 7) % tags
        kind = r % 10
        if kind < 5:
            policy["grants"].append({"src": [f"group:g{g}"], "dst": [f"tag:svc{t}"], "ip": ["tcp:443", "tcp:22"]})
        elif kind < 8:
            policy["acls"].append(
                {"action": "accept", "src": [f"group:g{g}"], "dst": [f"tag:svc{t}:80,8080", f"10.{r % 256}.0.0/16:*"]}
            )
        else:
            policy["ssh"].append(
                {
                    "action": "accept",
                    "src": [f"group:g{g}"],
                    "dst": [f"tag:svc{t}"],
                    "users": ["root", "autogroup:nonroot"],
                }
            )
    policy["grants"].append({"src": ["autogroup:member"], "dst": ["autogroup:self"], "ip": ["*"]})
    return {"users": topo_users, "nodes": topo_nodes}, policy


def compile_all(topology: dict[str, Any], policy: dict[str, Any]) -> tuple[float, int]:
    """Seconds to compile *policy* for every node; the number of filter rules handed out."""
    start = time.perf_counter()
    compiled = compile_policy(policy, from_topology(topology))
    handed = 0
    for node in compiled.tailnet.nodes:
        handed += len(compiled.packet_filter(node))
        compiled.ssh_rules(node)
        compiled.peer_list(node)
    return time.perf_counter() - start, handed


def run_cli(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "derptool", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def recorded(repeat: int) -> None:
    case = next(
        c for c in json.loads(RECORDED.read_text())["cases"] if c["code"] == 200 and len(c["topology"]["nodes"]) == 15
    )
    with tempfile.TemporaryDirectory() as tmp:
        pol, net = Path(tmp, "policy.json"), Path(tmp, "tailnet.json")
        pol.write_text(json.dumps(case["policy"]))
        net.write_text(json.dumps(case["topology"]))
        cmd = ["policy", "compile", str(pol), "--tailnet", str(net), "--format", "json"]
        full = min(run_cli(cmd) for _ in range(repeat))
        bare = min(run_cli(["--version"]) for _ in range(repeat))
    print(
        f"recorded 15-node tailnet ({case['id']}): derptool policy compile {full:.3f} s, start-up alone "
        f"(derptool --version) {bare:.3f} s; compile work {full - bare:.3f} s, ratio {full / bare:.2f}x "
        f"[goal < 0.3 s: {'ok' if full < 0.3 else 'MISSED'}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,3000,10000")
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    recorded(args.repeat)
    sizes = [int(s) for s in args.sizes.split(",")]
    times = []
    for n in sizes:
        topology, policy = generate(n, args.groups, args.rules)
        seconds, handed = compile_all(topology, policy)
        times.append(seconds)
        print(
            f"generated tailnet: {n} nodes, {args.groups} groups, {args.rules} rules: compiled for every node in "
            f"{seconds:.2f} s ({handed} filter rules handed out, {1e3 * seconds / n:.2f} ms per node)"
        )
    for (n1, t1), (n2, t2) in zip(zip(sizes, times, strict=True), zip(sizes[1:], times[1:], strict=True), strict=False):
        print(f"scaling {n1} -> {n2} nodes: exponent {math.log(t2 / t1) / math.log(n2 / n1):.2f} (1.0 = linear)")
    if len(sizes) > 2:
        print(
            f"scaling {sizes[0]} -> {sizes[-1]} nodes: exponent "
            f"{math.log(times[-1] / times[0]) / math.log(sizes[-1] / sizes[0]):.2f}"
        )
    if sizes[-1] >= 10000:
        print(f"goal 10 000 nodes < 30 s: {'ok' if times[-1] < 30 else 'MISSED'}")


if __name__ == "__main__":
    main()
