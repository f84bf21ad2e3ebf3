"""DERP latency measurement the way Tailscale's ``netcheck`` does it: a probe plan, then one asyncio run.

:func:`make_plan` turns a map into data: for each region that is not ``NoMeasureNoHome`` and has nodes, three
STUN probes per address family, probe *i* to node *i mod len(nodes)* starting at *i* × 100 ms. A family is
probed where the node has an address for it (``"none"`` disables it, an empty one means "resolve HostName");
nodes with ``STUNPort`` -1 are skipped; STUN-only nodes are probed.

:func:`run` executes a plan in one event loop, every region at once. All STUN probes of a family share one
UDP socket (so the addresses the servers report can be compared, as netcheck does); answers are matched
by transaction ID *and* source address, anything else is ignored. ICMP errors (port unreachable) are read
from the socket's error queue on Linux, so a closed port fails its probe at once. A region's latency per
family is the round trip of its first answer (which, as in netcheck, cancels the region's other probes of
that family); the region's latency is the lower of the two. Regions without a UDP answer after the STUN
phase (or all of them with ``https=True``) are measured by HTTPS: ``GET /derp/latency-check`` timed on an
already established TLS connection.

The preferred region is the one with the lowest latency (each first multiplied by its
``HomeParams.RegionScore``, when positive) that is not ``Avoid``. ``Avoid`` regions are measured and shown
but never preferred.
"""

from derptool.net.netcheck.client import Netcheck
from derptool.net.netcheck.engine import DEFAULT_TIMEOUT, STUN_PHASE, measure, run
from derptool.net.netcheck.home import HomeChooser, choose_home
from derptool.net.netcheck.plan import (
    PROBE_SPACING,
    PROBES_PER_FAMILY,
    Family,
    LastReport,
    Probe,
    ProbePlan,
    RegionPlan,
    last_report,
    make_plan,
)
from derptool.net.netcheck.report import Method, ProbeResult, RegionResult, Report, preferred_region

__all__ = [
    "DEFAULT_TIMEOUT",
    "PROBES_PER_FAMILY",
    "PROBE_SPACING",
    "STUN_PHASE",
    "Family",
    "HomeChooser",
    "LastReport",
    "Method",
    "Netcheck",
    "Probe",
    "ProbePlan",
    "ProbeResult",
    "RegionPlan",
    "RegionResult",
    "Report",
    "choose_home",
    "last_report",
    "make_plan",
    "measure",
    "preferred_region",
    "run",
]
