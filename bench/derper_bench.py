"""Relay round trip and ``check`` wall time against Tailscale's real derper on loopback.

Anchor: the DERP ping/pong round trip to the same server on an open connection (what the server alone
costs). Printed side by side, interleaved round by round: the relay round trip (client A -> server -> client B
-> server -> A, through one derper and across a meshed pair) and its ratio to the anchor; then the wall time
of ``check`` (every step, with and without ``--relay``) for one node, library call and CLI process.

    python bench/derper_bench.py [--rounds 5] [--packets 50]

Needs the derper binary (tests/support/derper.py says how to build it).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from derptool.net import check
from derptool.net.derp.client import DerpClient, DerpEndpoint
from derptool.net.derp.relay import relay_probe
from tests.support.derper import SKIP_REASON, derper_bed, find_derper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--packets", type=int, default=50)
    args = parser.parse_args()
    if find_derper() is None:
        sys.exit(SKIP_REASON)
    with tempfile.TemporaryDirectory() as tmp, derper_bed(Path(tmp)) as bed:
        a, b = bed.start_mesh(("derpa.test", "derpb.test"))
        ctx = ssl.create_default_context(cafile=bed.ca_file)
        ea = DerpEndpoint("127.0.0.1", a.port, a.hostname, ctx)
        eb = DerpEndpoint("127.0.0.1", b.port, b.hostname, ctx)
        pings: list[float] = []
        single: list[float] = []
        mesh: list[float] = []
        with DerpClient.connect(ea) as client:
            for _ in range(args.rounds):
                pings += [client.ping(timeout=5) * 1000 for _ in range(args.packets)]
                single += relay_probe(ea, count=args.packets, timeout=30).rtts_ms
                mesh += relay_probe(ea, eb, count=args.packets, timeout=30).rtts_ms
        anchor = statistics.median(pings)
        print(f"{'what':44} {'median ms':>10} {'p90 ms':>8} {'x anchor':>9}")
        for name, values in (
            ("anchor: DERP ping/pong to the server", pings),
            ("relay round trip, one derper", single),
            ("relay round trip, across a derper mesh", mesh),
        ):
            p90 = statistics.quantiles(values, n=10)[-1]
            print(f"{name:44} {statistics.median(values):10.3f} {p90:8.3f} {statistics.median(values) / anchor:9.2f}")

        target = check.NodeTarget(
            a.hostname,
            derp_port=a.port,
            stun_port=a.stun_port,
            ipv4="127.0.0.1",
            ipv6="none",
            node="900a",
            region_id=900,
        )
        lib_plain, lib_relay, cli = [], [], []
        map_file = Path(tmp) / "map.json"
        map_file.write_text(
            json.dumps(
                {
                    "Regions": {
                        "900": {
                            "RegionID": 900,
                            "RegionCode": "b",
                            "RegionName": "B",
                            "Nodes": [
                                {
                                    "Name": "900a",
                                    "RegionID": 900,
                                    "HostName": a.hostname,
                                    "IPv4": "127.0.0.1",
                                    "IPv6": "none",
                                    "STUNPort": a.stun_port,
                                    "DERPPort": a.port,
                                }
                            ],
                        }
                    }
                }
            )
        )
        exe = os.path.join(os.path.dirname(sys.executable), "derptool")
        for _ in range(args.rounds):
            started = time.monotonic()
            assert check.run("bench", [target], ca_file=bed.ca_file).ok
            lib_plain.append(time.monotonic() - started)
            started = time.monotonic()
            assert check.run("bench", [target], ca_file=bed.ca_file, relay=True).ok
            lib_relay.append(time.monotonic() - started)
            started = time.monotonic()
            subprocess.run(
                [exe, "check", "900", "--map", str(map_file), "--ca-file", bed.ca_file, "--relay"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            cli.append(time.monotonic() - started)
        print()
        for name, values in (
            ("check, library, every step", lib_plain),
            ("check --relay, library", lib_relay),
            ("derptool check --relay, CLI process", cli),
        ):
            print(f"{name:44} {statistics.median(values) * 1000:10.1f} ms wall (median of {len(values)})")


if __name__ == "__main__":
    main()
