"""Health check of a (self-hosted) DERP server: is it really there, and would Tailscale clients accept it?

For every node checked, in order (a failed step skips the ones that need it, with the reason):

``dns``
    the host name resolves (skipped for an IP address; the map's ``IPv4``/``IPv6`` stand in when it does not).
``stun``
    a Tailscale-style STUN binding request on the STUN port gets a valid answer.
``tls``
    TCP connect and TLS handshake on the DERP port, the chain verified against the system CAs plus an
    optional CA file (not verified for ``InsecureForTests`` nodes or ``insecure=True``; a
    ``CertName`` of ``sha256-raw:<hex>`` pins the certificate's SHA-256 instead, as tailscale does).
``cert_name``
    the certificate's subjectAltNames cover the expected name (``CertName``, else the host name).
``cert_expiry``
    the certificate is valid now; the days left are reported.
``latency_check`` / ``generate_204``
    ``GET /derp/latency-check`` answers 2xx and ``GET /generate_204`` answers 204.
``derp``
    ``GET /derp`` with ``Upgrade: DERP`` switches protocols (101) and the first frame is the server-key
    frame (type 0x01, magic ``DERP🔑``, 32-byte key). The key is reported as ``nodekey:<64 hex digits>``,
    the text form Tailscale uses for node public keys. Nothing more is sent: no tailnet is joined.

The result is data (:class:`CheckReport`); rendering is :func:`derptool.cli.check.check_text`. The
certificate reader is :mod:`derptool.net.check.x509`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import select
import socket
import ssl
import struct
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal

from derptool.derpmap import DEFAULT_DERP_PORT, DEFAULT_STUN_PORT, DERPMap, is_ip, is_valid_hostname
from derptool.errors import InputError
from derptool.net import stun
from derptool.net.check.x509 import CertInfo, cert_info, name_matches

Status = Literal["pass", "fail", "skip"]

DEFAULT_TIMEOUT = 5.0
DERP_MAGIC = b"DERP\xf0\x9f\x94\x91"
FRAME_SERVER_KEY = 0x01
KEY_LEN = 32
MAX_HEADER_BYTES = 16 * 1024
MAX_FRAME = 1 << 16


@dataclass(frozen=True)
class NodeTarget:
    """One server to check: where it is and what the map (or the command line) says about it."""

    host: str
    derp_port: int = DEFAULT_DERP_PORT
    stun_port: int | None = DEFAULT_STUN_PORT
    """None when the node has STUN disabled (``STUNPort`` -1)."""
    cert_name: str = ""
    ipv4: str = ""
    ipv6: str = ""
    stun_test_ip: str = ""
    insecure: bool = False
    stun_only: bool = False
    node: str | None = None
    region_id: int | None = None

    @property
    def tls_name(self) -> str:
        """The name the certificate must carry (and the SNI sent)."""
        return self.cert_name or self.host


@dataclass(frozen=True)
class Check:
    """The outcome of one check."""

    name: str
    status: Status
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class NodeCheck:
    """All checks of one node."""

    target: NodeTarget
    address: str | None = None
    checks: list[Check] = field(default_factory=list)
    public_key: str | None = None

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return all(c.status != "fail" for c in self.checks)

    def add(self, name: str, status: Status, detail: str, **data: Any) -> Check:
        check = Check(name, status, detail, data)
        self.checks.append(check)
        return check


@dataclass
class CheckReport:
    """The result of ``derptool check``."""

    target: str
    nodes: list[NodeCheck]

    @property
    def ok(self) -> bool:
        """True when no check of any node failed."""
        return all(n.ok for n in self.nodes)

    def to_data(self) -> dict[str, Any]:
        """JSON-ready data: ``{"target", "ok", "counts", "nodes": [{..., "checks": [...]}]}``."""
        counts = {"pass": 0, "fail": 0, "skip": 0}
        nodes = []
        for n in self.nodes:
            for c in n.checks:
                counts[c.status] += 1
            t = n.target
            nodes.append({
                "node": t.node,
                "region_id": t.region_id,
                "host": t.host,
                "address": n.address,
                "stun_port": t.stun_port,
                "derp_port": t.derp_port,
                "tls_name": t.tls_name,
                "ok": n.ok,
                "public_key": n.public_key,
                "checks": [{"name": c.name, "status": c.status, "detail": c.detail, **c.data} for c in n.checks],
            })
        return {"target": self.target, "ok": self.ok, "counts": counts, "nodes": nodes}


# -- what to check ---------------------------------------------------------------------------------


def parse_target(text: str, *, stun_port: int | None = None, derp_port: int | None = None) -> NodeTarget | None:
    """A host name, IP address, ``host:port`` or ``https://`` URL as a :class:`NodeTarget`.

    Returns None when *text* looks like a region selector instead (no dot, not an IP, not a URL, not
    ``localhost``). Raises :class:`InputError` for a malformed URL or host.
    """
    text = text.strip()
    url_port: int | None = None
    if "://" in text:
        url = urllib.parse.urlsplit(text)
        if url.scheme.lower() != "https":
            raise InputError(f"{text!r}: only https:// URLs point at a DERP server")
        try:
            host, url_port = url.hostname or "", url.port
        except ValueError as err:
            raise InputError(f"{text!r}: {err}") from None
        if not host:
            raise InputError(f"{text!r}: the URL has no host")
    else:
        host = text
        if host.startswith("["):
            inside, _, rest = host[1:].partition("]")
            host = inside
            if rest:
                if not rest.startswith(":") or not rest[1:].isdigit():
                    raise InputError(f"{text!r}: expected [ipv6]:port")
                url_port = int(rest[1:])
        elif host.count(":") == 1:
            name, _, port = host.partition(":")
            if not port.isdigit():
                raise InputError(f"{text!r}: the port must be a number")
            host, url_port = name, int(port)
        if not is_ip(host) and "." not in host and host.lower() != "localhost":
            return None
    if not is_valid_hostname(host):
        raise InputError(f"{text!r} is not a valid host name or IP address")
    if url_port is not None and not 0 < url_port < 65536:
        raise InputError(f"{text!r}: port {url_port} is out of range")
    return NodeTarget(
        host=host,
        derp_port=derp_port or url_port or DEFAULT_DERP_PORT,
        stun_port=stun_port or DEFAULT_STUN_PORT,
    )


def targets_from_map(dmap: DERPMap, region_ids: Iterable[int], *, stun_port: int | None = None,
                     derp_port: int | None = None) -> list[NodeTarget]:
    """Every node of the given regions as a :class:`NodeTarget` (ports overridden when given)."""
    out: list[NodeTarget] = []
    for rid in region_ids:
        region = dmap.regions.get(rid)
        if region is None:
            continue
        for n in region.nodes:
            out.append(NodeTarget(
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
            ))
    return out


# -- running the checks ------------------------------------------------------------------------------


def run(target: str, targets: list[NodeTarget], *, timeout: float = DEFAULT_TIMEOUT,
        ca_file: str | None = None, insecure: bool = False) -> CheckReport:
    """Check every node of *targets*; *target* is only the label shown for the whole report."""
    if timeout <= 0:
        raise InputError("the timeout must be a positive number of seconds")
    if ca_file is not None:
        try:
            ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as err:
            raise InputError(f"cannot use CA file {ca_file}: {err}") from None
    return CheckReport(target, [check_node(t, timeout=timeout, ca_file=ca_file, insecure=insecure)
                                for t in targets])


def check_node(t: NodeTarget, *, timeout: float = DEFAULT_TIMEOUT, ca_file: str | None = None,
               insecure: bool = False, now: dt.datetime | None = None) -> NodeCheck:
    """Run every check against one node."""
    result = NodeCheck(t)
    address = _check_dns(t, result)
    result.address = address
    _check_stun(t, address, result, timeout)
    if t.stun_only:
        for name in ("tls", "cert_name", "cert_expiry", "latency_check", "generate_204", "derp"):
            result.add(name, "skip", "STUN-only node: no DERP server expected")
        return result
    if address is None:
        for name in ("tls", "cert_name", "cert_expiry", "latency_check", "generate_204", "derp"):
            result.add(name, "skip", "no address to connect to")
        return result
    tls = _check_tls(t, address, result, timeout, ca_file, insecure or t.insecure, now)
    if tls is None:
        for name in ("latency_check", "generate_204", "derp"):
            result.add(name, "skip", "no TLS connection")
        return result
    _check_http(t, address, tls, result, timeout)
    return result


def _addresses(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM)
    found: list[str] = []
    for family in (socket.AF_INET, socket.AF_INET6):
        for info in infos:
            ip = str(info[4][0]).split("%", 1)[0]
            if info[0] == family and ip not in found:
                found.append(ip)
    return found


def _check_dns(t: NodeTarget, result: NodeCheck) -> str | None:
    given = [a for a in (t.ipv4, t.ipv6) if a and a != "none"]
    if is_ip(t.host):
        result.add("dns", "skip", f"{t.host} is an IP address", addresses=[t.host])
        return given[0] if given else t.host
    try:
        found = _addresses(t.host)
    except (OSError, UnicodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        if given:
            result.add("dns", "skip", f"{t.host} does not resolve ({reason}); using the map's "
                       f"address {given[0]}", addresses=[])
            return given[0]
        result.add("dns", "fail", f"{t.host} does not resolve: {reason}", addresses=[])
        return None
    usable = [a for a in found if not (t.ipv4 == "none" and "." in a) and not (t.ipv6 == "none" and ":" in a)]
    result.add("dns", "pass", f"{t.host} resolves to {', '.join(found)}", addresses=found)
    if given:
        return given[0]
    return usable[0] if usable else None


def _check_stun(t: NodeTarget, address: str | None, result: NodeCheck, timeout: float) -> None:
    if t.stun_port is None:
        result.add("stun", "skip", "STUN is disabled for this node (STUNPort -1)")
        return
    if t.stun_test_ip:
        address = t.stun_test_ip
    if address is None:
        result.add("stun", "skip", "no address to send to")
        return
    where = f"[{address}]:{t.stun_port}" if ":" in address else f"{address}:{t.stun_port}"
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    txid = stun.new_transaction_id()
    request = stun.binding_request(txid)
    deadline = time.monotonic() + min(timeout, 3.0)
    error = "no answer"
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((address, t.stun_port))
        except OSError as err:
            result.add("stun", "fail", f"cannot send to {where}: {err.strerror or err}")
            return
        next_send = 0.0
        while (now := time.monotonic()) < deadline:
            if now >= next_send:
                try:
                    sock.send(request)
                except OSError as err:
                    error = err.strerror or str(err)
                next_send = now + 0.5
            ready, _, _ = select.select([sock], [], [], max(0.0, min(deadline, next_send) - now))
            if not ready:
                continue
            try:
                packet = sock.recv(stun.MAX_PACKET_SIZE)
            except OSError as err:  # ICMP port unreachable
                error = err.strerror or str(err)
                continue
            try:
                resp = stun.parse_response(packet, txid)
            except stun.StunError as err:
                error = f"bad answer: {err}"
                continue
            seen = f"[{resp.ip}]:{resp.port}" if ":" in resp.ip else f"{resp.ip}:{resp.port}"
            result.add("stun", "pass", f"{where} answered; it sees this machine at {seen}", mapped=seen)
            return
    result.add("stun", "fail", f"{where}: {error} within {min(timeout, 3.0):g} s")


# -- TLS -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tls:
    context: ssl.SSLContext
    verified: bool


def _connect(address: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((address, port), timeout=timeout)


def _handshake(address: str, port: int, sni: str | None, ctx: ssl.SSLContext, timeout: float) -> ssl.SSLSocket:
    raw = _connect(address, port, timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=sni)
    except BaseException:
        raw.close()
        raise


def _contexts(ca_file: str | None) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    verify = ssl.create_default_context()
    if ca_file:
        verify.load_verify_locations(cafile=ca_file)
    verify.check_hostname = False  # names are checked on their own, to report them
    loose = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    loose.check_hostname = False
    loose.verify_mode = ssl.CERT_NONE
    return verify, loose


def _check_tls(t: NodeTarget, address: str, result: NodeCheck, timeout: float, ca_file: str | None,
               insecure: bool, now: dt.datetime | None) -> _Tls | None:
    where = f"[{address}]:{t.derp_port}" if ":" in address else f"{address}:{t.derp_port}"
    pin = t.cert_name[len("sha256-raw:"):].lower() if t.cert_name.startswith("sha256-raw:") else None
    sni = None if pin or is_ip(t.tls_name) else t.tls_name
    verify, loose = _contexts(ca_file)
    chain_error: str | None = None
    verified = False
    try:
        if insecure or pin:
            sock = _handshake(address, t.derp_port, sni, loose, timeout)
        else:
            try:
                sock = _handshake(address, t.derp_port, sni, verify, timeout)
                verified = True
            except ssl.SSLCertVerificationError as err:
                chain_error = err.verify_message or str(err)
                sock = _handshake(address, t.derp_port, sni, loose, timeout)
    except ssl.SSLError as err:
        result.add("tls", "fail", f"TLS handshake with {where} failed: {err.reason or err}")
        _skip_cert(result, "no TLS handshake")
        return None
    except OSError as err:
        result.add("tls", "fail", f"cannot connect to {where}: {err.strerror or err}")
        _skip_cert(result, "no TLS connection")
        return None
    with sock:
        der = sock.getpeercert(binary_form=True) or b""
        version = sock.version() or "TLS"
    digest = hashlib.sha256(der).hexdigest()
    if pin:
        verified = digest == pin
        if verified:
            result.add("tls", "pass", f"{version} with {where}; certificate matches the sha256-raw pin",
                       sha256=digest)
        else:
            result.add("tls", "fail", f"certificate SHA-256 {digest} does not match the CertName pin {pin}",
                       sha256=digest)
    elif chain_error:
        result.add("tls", "fail", f"{version} with {where}, but the certificate is not trusted: {chain_error}",
                   sha256=digest)
    elif verified:
        result.add("tls", "pass", f"{version} with {where}; certificate chain trusted", sha256=digest)
    else:
        why = "InsecureForTests" if t.insecure else "--insecure"
        result.add("tls", "pass", f"{version} with {where}; chain not verified ({why})", sha256=digest)

    try:
        info = cert_info(der)
    except ValueError as err:
        _skip_cert(result, f"cannot read the certificate: {err}")
    else:
        lenient = insecure and not pin
        _check_name(t, info, result, pin is not None, lenient)
        _check_expiry(info, result, now or dt.datetime.now(dt.UTC), lenient)
    # Later requests go over a context that trusts what a client would trust (or nothing, if insecure).
    # (A pinned certificate was checked above; later connections need not verify a chain it lacks.)
    trusted = verified and chain_error is None
    return _Tls(verify if trusted and not pin else loose, trusted)


def _skip_cert(result: NodeCheck, why: str) -> None:
    result.add("cert_name", "skip", why)
    result.add("cert_expiry", "skip", why)


def _check_name(t: NodeTarget, info: CertInfo, result: NodeCheck, pinned: bool, lenient: bool) -> None:
    names = [*info.dns_names, *info.ip_addresses]
    shown = ", ".join(names) or "none"
    if pinned:
        result.add("cert_name", "skip", f"certificate pinned by SHA-256; names: {shown}", names=names)
        return
    if name_matches(t.tls_name, info):
        result.add("cert_name", "pass", f"covers {t.tls_name} (names: {shown})", names=names)
        return
    status: Status = "skip" if lenient else "fail"
    extra = " (not required: verification is off)" if lenient else ""
    source = "CertName" if t.cert_name else "host name"
    result.add("cert_name", status, f"does not cover the {source} {t.tls_name}{extra}; names: {shown}",
               names=names)


def _check_expiry(info: CertInfo, result: NodeCheck, now: dt.datetime, lenient: bool) -> None:
    days = (info.not_after - now).total_seconds() / 86400
    data = {"not_after": info.not_after.isoformat(), "days_left": math.floor(days)}
    bad: Status = "skip" if lenient else "fail"
    if now < info.not_before:
        result.add("cert_expiry", bad, f"not valid before {info.not_before:%Y-%m-%d %H:%M} UTC", **data)
    elif days < 0:
        result.add("cert_expiry", bad, f"expired {-days:.0f} days ago ({info.not_after:%Y-%m-%d})", **data)
    else:
        result.add("cert_expiry", "pass", f"expires in {days:.0f} days ({info.not_after:%Y-%m-%d})", **data)


# -- HTTPS and DERP --------------------------------------------------------------------------------


def _request(t: NodeTarget, address: str, tls: _Tls, timeout: float, path: str,
             extra: str = "") -> tuple[ssl.SSLSocket, BinaryIO, int, dict[str, str]]:
    """Send ``GET path`` and read the status line and headers; the caller closes the socket."""
    sni = None if is_ip(t.tls_name) or t.cert_name.startswith("sha256-raw:") else t.tls_name
    sock = _handshake(address, t.derp_port, sni, tls.context, timeout)
    try:
        host = f"[{t.host}]" if ":" in t.host else t.host
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: derptool-check\r\n{extra}\r\n"
                     .encode("ascii"))
        reader: BinaryIO = sock.makefile("rb")
        status_line = reader.readline(MAX_HEADER_BYTES).decode("latin-1").strip()
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ValueError(f"not an HTTP answer: {status_line[:60]!r}")
        headers: dict[str, str] = {}
        total = 0
        while True:
            line = reader.readline(MAX_HEADER_BYTES)
            total += len(line)
            if not line or line in (b"\r\n", b"\n") or total > MAX_HEADER_BYTES:
                break
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        return sock, reader, int(parts[1]), headers
    except BaseException:
        sock.close()
        raise


def _check_http(t: NodeTarget, address: str, tls: _Tls, result: NodeCheck, timeout: float) -> None:
    note = "" if tls.verified else " (certificate not verified)"
    for name, path, want in (("latency_check", "/derp/latency-check", None), ("generate_204", "/generate_204", 204)):
        try:
            sock, _reader, status, _ = _request(t, address, tls, timeout, path, "Connection: close\r\n")
            sock.close()
        except (OSError, ValueError) as err:
            result.add(name, "fail", f"GET {path}: {_reason(err)}")
            continue
        good = status == want if want else 200 <= status <= 299
        expect = str(want) if want else "2xx"
        result.add(name, "pass" if good else "fail", f"GET {path}: {status}{'' if good else f', want {expect}'}{note}",
                   http_status=status)
    _check_derp(t, address, tls, result, timeout, note)


def _check_derp(t: NodeTarget, address: str, tls: _Tls, result: NodeCheck, timeout: float, note: str) -> None:
    try:
        sock, reader, status, headers = _request(t, address, tls, timeout, "/derp",
                                                 "Upgrade: DERP\r\nConnection: Upgrade\r\n")
    except (OSError, ValueError) as err:
        result.add("derp", "fail", f"GET /derp: {_reason(err)}")
        return
    with sock:
        if status != 101:
            result.add("derp", "fail", f"GET /derp with Upgrade: DERP answered {status}, not 101 Switching "
                       "Protocols: not a DERP server", http_status=status)
            return
        try:
            key = read_server_key(reader)
        except (OSError, ValueError) as err:
            result.add("derp", "fail", f"upgraded, but no server-key frame: {_reason(err)}", http_status=status)
            return
    public_key = "nodekey:" + key.hex()
    header_key = headers.get("derp-public-key", "").lower()
    if header_key and header_key != key.hex():
        result.add("derp", "fail", f"the key frame ({public_key}) and the Derp-Public-Key header "
                   f"({header_key}) disagree", public_key=public_key)
        return
    result.public_key = public_key
    result.add("derp", "pass", f"101 Switching Protocols, then the server-key frame{note}", public_key=public_key)


def read_server_key(reader: BinaryIO) -> bytes:
    """Read the DERP server-key frame from *reader* and return the 32-byte public key."""
    header = _read_exactly(reader, 5)
    ftype, length = struct.unpack("!BI", header)
    if ftype != FRAME_SERVER_KEY:
        raise ValueError(f"first frame has type {ftype:#04x}, not server key (0x01)")
    if not len(DERP_MAGIC) + KEY_LEN <= length <= MAX_FRAME:
        raise ValueError(f"server-key frame has length {length}, want at least {len(DERP_MAGIC) + KEY_LEN}")
    body = _read_exactly(reader, length)
    if body[:len(DERP_MAGIC)] != DERP_MAGIC:
        raise ValueError("server-key frame lacks the DERP magic")
    return body[len(DERP_MAGIC):len(DERP_MAGIC) + KEY_LEN]


def _read_exactly(reader: BinaryIO, n: int) -> bytes:
    data = reader.read(n)
    if len(data) != n:
        raise ValueError(f"connection closed after {len(data)} of {n} bytes")
    return data


def _reason(err: BaseException) -> str:
    if isinstance(err, ssl.SSLError):
        return f"TLS error: {err.reason or err}"
    if isinstance(err, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(err, OSError):
        return err.strerror or str(err)
    return str(err)


__all__ = [
    "CertInfo", "Check", "CheckReport", "NodeCheck", "NodeTarget", "cert_info", "check_node", "name_matches",
    "parse_target", "read_server_key", "run", "targets_from_map",
]
