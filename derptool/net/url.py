"""The one URL parser of derptool: every URL a user gives (an option, an argument, an environment variable).

:func:`parse_url` accepts ``scheme://[user[:password]@]host[:port][/path][?query][#fragment]`` where *host* is a
DNS name (an internationalised one is turned into its ASCII form), an IPv4 address or a bracketed IPv6 address,
and *port* is 1..65535. It refuses, with one :class:`~derptool.errors.UsageError` line naming *where* the URL came
from, what httpx or urllib would trip over later: control characters and line separators (U+2028 too), spaces,
an unclosed ``[``, a port that is not a number in range, an empty host, another scheme.

A password is never echoed: :attr:`URL.shown` (what messages print, and ``str(url)``) and :func:`redact` (for
text that did not parse) replace it with ``***``.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass

from derptool.errors import UsageError

MAX_URL_CHARS = 8192
"""Longest URL accepted (browsers and servers stop near here too)."""

_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@]*?):([^/?#]*)@")
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def redact(text: str) -> str:
    """*text* with the password of a ``scheme://user:password@`` prefix replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@", text, count=1)


def show(text: str) -> str:
    """*text* redacted and quoted for a one-line message (control characters and separators escaped)."""
    return repr(redact(text))


@dataclass(frozen=True)
class URL:
    """A URL :func:`parse_url` accepted; ``text`` is what the user gave (password included: for requests only)."""

    text: str
    scheme: str
    host: str
    """The host without brackets, in its ASCII form."""
    port: int | None
    rest: str
    """Path, query and fragment (``""`` when there is none)."""
    has_password: bool = False

    @property
    def shown(self) -> str:
        """The URL as messages print it: the password (if any) replaced by ``***``."""
        return redact(self.text)

    @property
    def base(self) -> str:
        """The URL without a trailing ``/`` (to append an API path to)."""
        return self.text.rstrip("/")

    def __str__(self) -> str:
        return self.shown


def _bad(where: str, text: str, why: str) -> UsageError:
    return UsageError(f"{where}: {show(text)} is not a usable URL: {why}")


def _control(text: str) -> tuple[int, str] | None:
    for i, ch in enumerate(text):
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"):
            return i, f"U+{ord(ch):04X}"
    return None


def _check_host(host: str, where: str, text: str) -> str:
    if not host:
        raise _bad(where, text, "it has no host")
    try:
        ipaddress.IPv4Address(host)
        return host
    except ValueError:
        pass
    if host.isascii():
        ascii_host = host
    else:
        import idna  # lazy: only an internationalised host needs it (httpx's own IDNA 2008 codec)

        try:
            ascii_host = idna.encode(host.lower()).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise _bad(where, text, "its host is not a valid internationalised domain name") from None
    name = ascii_host[:-1] if ascii_host.endswith(".") else ascii_host
    if len(name) > 253 or not all(_DNS_LABEL.match(label) for label in name.split(".")):
        raise _bad(where, text, "its host is not a valid host name or IP address")
    if re.fullmatch(r"[0-9.]+", name):
        raise _bad(where, text, "its host looks like an IPv4 address but is not one")
    return ascii_host.lower()


def parse_url(text: str, where: str, *, schemes: tuple[str, ...] = ("http", "https"), example: str = "") -> URL:
    """*text* as a :class:`URL`, or :class:`UsageError` (exit 2) naming *where* (``--prometheus``) and the fault.

    Surrounding spaces are ignored; *schemes* are the ones accepted (lower-case); *example* is shown when the
    scheme is missing or wrong.
    """
    text = text.strip(" \t\r\n")
    hint = f" (example: {example})" if example else ""
    if len(text) > MAX_URL_CHARS:
        raise UsageError(f"{where}: a URL of {len(text)} characters; derptool accepts at most {MAX_URL_CHARS}")
    found = _control(text)
    if found is not None:
        raise _bad(where, text, f"it holds a control character or space ({found[1]}) at position {found[0] + 1}")
    scheme, sep, after = text.partition("://")
    if not sep or scheme.lower() not in schemes:
        kind = "http(s)" if set(schemes) == {"http", "https"} else "/".join(schemes)
        raise UsageError(f"{where}: {show(text)} is not an {kind} URL{hint}")
    end = min((i for i in (after.find(c) for c in "/?#") if i >= 0), default=len(after))
    authority, rest = after[:end], after[end:]
    userinfo, at, hostport = authority.rpartition("@")
    has_password = bool(at) and ":" in userinfo
    port_text: str | None
    if hostport.startswith("["):
        inside, closed, tail = hostport[1:].partition("]")
        if not closed:
            raise _bad(where, text, "an IPv6 address opened with [ is not closed with ] (write [::1] or [::1]:PORT)")
        try:
            ipaddress.IPv6Address(inside)
        except ValueError:
            raise _bad(where, text, f"[{inside}] is not an IPv6 address") from None
        if tail and not tail.startswith(":"):
            raise _bad(where, text, "after the ] of an IPv6 address only :PORT may follow")
        host, port_text = inside.lower(), (tail[1:] if tail else None)
    else:
        if "]" in hostport or "[" in hostport:
            raise _bad(where, text, "brackets belong around an IPv6 address only ([::1])")
        host, colon, port_text_ = hostport.partition(":")
        if ":" in port_text_:
            raise _bad(where, text, "an IPv6 address must be written in brackets (http://[::1]:9090/)")
        host = _check_host(host, where, text)
        port_text = port_text_ if colon else None
    port: int | None = None
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5 or not 0 < int(port_text) < 65536:
            raise _bad(where, text, f"the port {port_text!r} is not a number from 1 to 65535")
        port = int(port_text)
    return URL(text, scheme.lower(), host, port, rest, has_password)


def looks_like_url(text: str) -> bool:
    """True when *text* starts like ``scheme://`` (a URL rather than a file name or a keyword)."""
    return re.match(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://", text) is not None
