"""What to check: a host, ``host:port`` or ``https://`` URL from the command line, or a map's nodes."""

from __future__ import annotations

from collections.abc import Iterable

from derptool.derpmap import DEFAULT_DERP_PORT, DEFAULT_STUN_PORT, DERPMap, is_ip, is_valid_hostname
from derptool.errors import InputError
from derptool.net.check.report import NodeTarget
from derptool.net.dial import split_host_port
from derptool.net.url import parse_url, show


def parse_target(text: str, *, stun_port: int | None = None, derp_port: int | None = None) -> NodeTarget | None:
    """A host name, IP address, ``host:port`` or ``https://`` URL as a :class:`NodeTarget`.

    Returns None when *text* looks like a region selector instead (no dot, not an IP, not a URL, not
    ``localhost``). Raises :class:`InputError` for a malformed URL or host.
    """
    text = text.strip()
    url_port: int | None = None
    if "://" in text:
        url = parse_url(text, "check", schemes=("https",), example="https://derp.example.com")
        host, url_port = url.host, url.port
    else:
        if any(not c.isprintable() or c.isspace() for c in text):
            raise InputError(f"{show(text)}: a host holds no control characters or spaces")
        if text.startswith("[") and "]" not in text:
            raise InputError(f"{text!r}: an IPv6 address opened with [ must be closed with ] (write [::1]:443)")
        try:
            host, url_port = split_host_port(text)
        except ValueError as err:
            raise InputError(f"{text!r}: {err}") from None
        if not is_ip(host) and "." not in host and host.lower() != "localhost":
            return None
    if not is_valid_hostname(host):
        raise InputError(f"{show(text)} is not a valid host name or IP address")
    if url_port is not None and not 0 < url_port < 65536:
        raise InputError(f"{text!r}: port {url_port} is out of range")
    return NodeTarget(
        host=host,
        derp_port=derp_port or url_port or DEFAULT_DERP_PORT,
        stun_port=stun_port or DEFAULT_STUN_PORT,
    )


def targets_from_map(
    dmap: DERPMap, region_ids: Iterable[int], *, stun_port: int | None = None, derp_port: int | None = None
) -> list[NodeTarget]:
    """Every node of the given regions as a :class:`NodeTarget` (ports overridden when given)."""
    out: list[NodeTarget] = []
    for rid in region_ids:
        region = dmap.regions.get(rid)
        if region is None:
            continue
        for n in region.nodes:
            out.append(
                NodeTarget(
                    host=n.host_name,
                    derp_port=derp_port or n.effective_derp_port,
                    stun_port=stun_port or n.effective_stun_port,
                    cert_name=n.cert_name,
                    ipv4=n.ipv4,
                    ipv6=n.ipv6,
                    stun_test_ip=n.stun_test_ip,
                    insecure=n.insecure_for_tests,
                    stun_only=n.stun_only,
                    node=n.name,
                    region_id=rid,
                )
            )
    return out
