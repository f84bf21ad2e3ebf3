"""The control server's URL: where SSH ``check`` actions send a user to re-authenticate."""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_CONTROL_URL = "https://login.tailscale.com"
"""Tailscale's own control plane, the default when neither ``--control-url`` nor the tailnet names one."""


def check_control_url(url: str) -> str:
    """*url* as the base of SSH ``check`` actions (no trailing ``/``); raises ``ValueError`` with a message
    that never repeats a password the URL may carry."""
    if not url.strip():
        raise ValueError("the control URL is empty; give e.g. https://headscale.example.com")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError("the control URL holds a space or control character")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("the control URL is not a URL (bad host or port)") from None
    if parts.username is not None or parts.password is not None:
        raise ValueError("the control URL must not carry a user name or password; give scheme://host[:port]")
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"the control URL {url!r} is not http:// or https://")
    if not parts.hostname:
        raise ValueError(f"the control URL {url!r} has no host")
    if port == 0:
        raise ValueError(f"the control URL {url!r} has port 0")
    if parts.query or parts.fragment:
        raise ValueError(f"the control URL {url!r} has a query or fragment; give scheme://host[:port][/path]")
    return url.rstrip("/")
