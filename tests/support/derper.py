"""Tailscale's real ``derper`` on loopback, for tests: TLS from a test CA, STUN, and meshed pairs.

The binary comes from ``go install tailscale.com/cmd/derper@v1.102.5`` into ``tests/support/go/bin``
(``.ci/build-go-peers`` does that); :func:`find_derper` looks there, then on ``PATH``. Tests skip with
:data:`SKIP_REASON` where it is missing.

How each server is started (flags of derper v1.102.5):

* ``-a 127.0.0.1:PORT -certmode manual -certdir DIR -hostname NAME``: TLS with ``DIR/NAME.crt`` and
  ``DIR/NAME.key`` (issued by a ``trustme`` CA for NAME; derper refuses a TLS client whose SNI is not NAME);
* ``-stun-port PORT``: STUN on the same loopback address; ``-http-port -1``: no port-80 listener;
* ``-c FILE``: the server's private key, written by us first, so the test knows the public key;
* mesh: both servers read the same ``-mesh-psk-file`` and ``-mesh-with OTHER:PORT/127.0.0.1`` (the part
  after the slash is the address dialled, so no name is resolved); ``SSL_CERT_FILE`` makes derper's mesh
  client trust the test CA;
* client verification without a tailscaled: ``-verify-clients -socket MISSING`` (every lookup in the
  absent tailscaled fails, so every client is refused), or ``-verify-client-url URL
  -verify-client-url-fail-open=false`` with an admission URL on a closed loopback port.

Each server's log goes to ``NAME.log`` in its directory; :meth:`Derper.log` returns it for failure messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from nacl.public import PrivateKey

from tests.support.ports import free_port

GO_BIN = Path(__file__).resolve().parent / "go" / "bin"
SKIP_REASON = (
    "needs Tailscale's derper (Go): run .ci/build-go-peers, or "
    "GOBIN=$PWD/tests/support/go/bin go install tailscale.com/cmd/derper@v1.102.5"
)
START_TIMEOUT = 15.0


def find_derper() -> str | None:
    """The derper binary: ``tests/support/go/bin/derper``, else one on PATH, else None."""
    local = GO_BIN / "derper"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("derper")


@dataclass
class Derper:
    """One running derper: where it listens, its key, its certificate name."""

    hostname: str
    port: int
    stun_port: int
    public_key: bytes
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    host: str = "127.0.0.1"

    @property
    def node_key(self) -> str:
        """The server key in Tailscale's text form, ``nodekey:<hex>``."""
        return "nodekey:" + self.public_key.hex()

    @property
    def url(self) -> str:
        return f"https://{self.hostname}:{self.port}/derp"

    private_key: bytes = b""

    def log(self) -> str:
        """What derper wrote to its log so far (for failure messages)."""
        path = self.directory / f"{self.hostname}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Terminate the process (then kill it if it lingers)."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class DerperBed:
    """A test CA and the derpers started under one directory; :meth:`close` stops them all."""

    directory: Path
    ca: trustme.CA = field(default_factory=trustme.CA)
    servers: list[Derper] = field(default_factory=list)

    @property
    def ca_file(self) -> str:
        """The CA certificate (PEM) that clients must trust."""
        path = self.directory / "ca.pem"
        if not path.exists():
            self.ca.cert_pem.write_to_path(str(path))
        return str(path)

    def mesh_psk_file(self) -> str:
        """A mesh pre-shared key file (64 lower-case hex digits), the same for every call."""
        path = self.directory / "mesh.key"
        if not path.exists():
            path.write_text(os.urandom(32).hex() + "\n")
        return str(path)

    def start(
        self,
        hostname: str,
        *,
        port: int | None = None,
        stun_port: int | None = None,
        cert: trustme.LeafCert | None = None,
        extra: Sequence[str] = (),
        mesh_with: str = "",
        host: str = "127.0.0.1",
        private_key: bytes | None = None,
        same_cert_as: Derper | None = None,
    ) -> Derper:
        """Start one derper with a certificate for *hostname* (or *cert*) and wait until TLS answers.

        *private_key* (32 bytes) gives it a chosen key (two servers with one key look like one server);
        *host* is the loopback address it binds (``::1`` for IPv6); *same_cert_as* reuses another server's
        certificate files.
        """
        binary = find_derper()
        if binary is None:
            raise RuntimeError(SKIP_REASON)
        sdir = self.directory / (hostname if host == "127.0.0.1" else f"{hostname}@{host}")
        certdir = sdir / "certs"
        certdir.mkdir(parents=True, exist_ok=True)
        if same_cert_as is not None:
            for ext in ("crt", "key"):
                shutil.copy(
                    same_cert_as.directory / "certs" / f"{same_cert_as.hostname}.{ext}", certdir / f"{hostname}.{ext}"
                )
        else:
            leaf = cert or self.ca.issue_cert(hostname)
            (certdir / f"{hostname}.crt").write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
            leaf.private_key_pem.write_to_path(str(certdir / f"{hostname}.key"))
        private = PrivateKey(private_key) if private_key is not None else PrivateKey.generate()
        keyfile = sdir / "derper.key"
        keyfile.write_text(json.dumps({"PrivateKey": "privkey:" + bytes(private).hex()}))
        port = port or free_port(host=host)
        stun_port = stun_port or free_port(socket.SOCK_DGRAM, host=host)
        listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        args = [
            binary,
            "-a",
            listen,
            "-certmode",
            "manual",
            "-certdir",
            str(certdir),
            "-hostname",
            hostname,
            "-stun-port",
            str(stun_port),
            "-http-port",
            "-1",
            "-c",
            str(keyfile),
            "-mesh-psk-file",
            self.mesh_psk_file() if mesh_with else "",
            *extra,
        ]
        if mesh_with:
            args += ["-mesh-with", mesh_with]
        env = {**os.environ, "SSL_CERT_FILE": self.ca_file, "HOME": str(sdir)}
        server = Derper(
            hostname, port, stun_port, bytes(private.public_key), sdir, host=host, private_key=bytes(private)
        )
        logf = (sdir / f"{hostname}.log").open("wb")
        server.process = subprocess.Popen(
            args, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=sdir
        )
        logf.close()
        self.servers.append(server)
        _wait_ready(server)
        return server

    def start_mesh(self, names: Sequence[str] = ("derpa.test", "derpb.test")) -> list[Derper]:
        """Start one derper per name, all meshed with each other (same key, each dialling the others)."""
        ports = {name: free_port() for name in names}
        out = []
        for name in names:
            peers = ",".join(f"{other}:{ports[other]}/127.0.0.1" for other in names if other != name)
            out.append(self.start(name, port=ports[name], mesh_with=peers))
        for server in out:
            for other in names:
                if other != server.hostname:
                    _wait_mesh_link(server, f"{other}:{ports[other]}")
        return out
        return out

    def close(self) -> None:
        """Stop every server started here."""
        for server in self.servers:
            server.stop()
        self.servers.clear()


def _wait_ready(server: Derper) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    proc = server.process
    assert proc is not None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"derper exited with {proc.returncode}:\n{server.log()}")
        with contextlib.suppress(OSError), socket.create_connection((server.host, server.port), timeout=0.5):
            return
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"derper did not listen on {server.port} within {START_TIMEOUT:g} s:\n{server.log()}")


def _mesh_link_up(log: str, peer: str) -> bool:
    """True when the last thing *log* says about its mesh link to *peer* is a dial that has not failed."""
    lines = [
        line
        for line in log.splitlines()
        if f'mesh("{peer}")' in line and ("mesh connect:" in line or "connecting to" in line or "Recv:" in line)
    ]
    return bool(lines) and "connecting to" in lines[-1]


def _wait_mesh_link(server: Derper, peer: str) -> None:
    """Wait until *server*'s mesh link to *peer* is up (a dial made before the peer listened is retried
    after derper's 5 s back-off; derper logs no success line, so a dial not failing for 0.5 s counts)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if _mesh_link_up(server.log(), peer):
            time.sleep(0.5)
            if _mesh_link_up(server.log(), peer):
                return
        time.sleep(0.05)
    raise RuntimeError(f"{server.hostname}: mesh link to {peer} not up within {START_TIMEOUT:g} s:\n{server.log()}")


@contextlib.contextmanager
def derper_bed(directory: Path) -> Iterator[DerperBed]:
    """A :class:`DerperBed` in *directory* whose servers are stopped on exit."""
    bed = DerperBed(directory)
    try:
        yield bed
    finally:
        bed.close()
