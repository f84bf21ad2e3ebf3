"""Curve25519 keys as DERP uses them, in Tailscale's text forms, and the NaCl box that seals handshakes.

A DERP server and every client have a Curve25519 key pair. The public half is written ``nodekey:<64 hex>``
(the text form of Tailscale's node keys), the private half ``privkey:<64 hex>``. The client-info and
server-info frames carry a NaCl box (Curve25519, XSalsa20, Poly1305) from one key pair to the other: a
24-byte random nonce followed by the ciphertext. The cryptography is libsodium's, through PyNaCl.
"""

from __future__ import annotations

from dataclasses import dataclass

from nacl.exceptions import CryptoError
from nacl.public import Box, PrivateKey, PublicKey

PUBLIC_PREFIX = "nodekey:"
PRIVATE_PREFIX = "privkey:"
RAW_LEN = 32


def _raw_from_text(text: str, prefix: str) -> bytes:
    body = text.strip()
    if body.startswith(prefix):
        body = body[len(prefix) :]
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raise ValueError(f"{text!r} is not {prefix}<64 hex digits>") from None
    if len(raw) != RAW_LEN:
        raise ValueError(f"{text!r} is not {prefix}<64 hex digits>")
    return raw


@dataclass(frozen=True)
class NodePublic:
    """A public key (a DERP server's, or a client's node key)."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != RAW_LEN:
            raise ValueError(f"a public key is {RAW_LEN} bytes, got {len(self.raw)}")

    @classmethod
    def parse(cls, text: str) -> NodePublic:
        """``nodekey:<hex>`` (or bare hex) as a key; raises ``ValueError`` otherwise."""
        return cls(_raw_from_text(text, PUBLIC_PREFIX))

    def __str__(self) -> str:
        return PUBLIC_PREFIX + self.raw.hex()

    def short(self) -> str:
        """The first five hex digits in brackets, as Tailscale's logs show keys: ``[abcde]``."""
        return f"[{self.raw.hex()[:5]}]"


class NodePrivate:
    """A private key: seals messages to, and opens messages from, another key."""

    def __init__(self, raw: bytes | None = None) -> None:
        self._key = PrivateKey(raw) if raw is not None else PrivateKey.generate()
        self.public = NodePublic(bytes(self._key.public_key))

    @classmethod
    def generate(cls) -> NodePrivate:
        """A fresh random key."""
        return cls()

    @classmethod
    def parse(cls, text: str) -> NodePrivate:
        """``privkey:<hex>`` as a key; raises ``ValueError`` otherwise."""
        return cls(_raw_from_text(text, PRIVATE_PREFIX))

    def text(self) -> str:
        """The private key in its text form (a secret: never log it)."""
        return PRIVATE_PREFIX + bytes(self._key).hex()

    def __repr__(self) -> str:
        return f"NodePrivate(public={self.public})"

    def seal_to(self, peer: NodePublic, message: bytes) -> bytes:
        """*message* in a NaCl box from this key to *peer*: nonce (24 bytes) then ciphertext."""
        return bytes(Box(self._key, PublicKey(peer.raw)).encrypt(message))

    def open_from(self, peer: NodePublic, sealed: bytes) -> bytes:
        """The message in a box *peer* sealed to this key; raises ``ValueError`` if it does not open."""
        try:
            return bytes(Box(self._key, PublicKey(peer.raw)).decrypt(sealed))
        except CryptoError:
            raise ValueError(f"the box does not open with the key of {peer}") from None
