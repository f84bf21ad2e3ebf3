"""One line saying why a network operation failed, in the same words wherever it failed.

Every probe, check and fetch of derptool turns the exception it caught into a reason with
:func:`describe_error`; the caller puts the host (or URL) and the step in front of it. A reason is
lower-case, one line, and says what to try where there is something to try.
"""

from __future__ import annotations

import errno
import os
import sys

from derptool.errors import DerptoolError

_UNREACHABLE = (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)
# The resolver's words for "this name does not resolve", for errors that carry them as text only.
_RESOLVER_TEXTS = ("Name or service not known", "Temporary failure in name resolution", "No address associated")
CANNOT_RESOLVE = "cannot resolve the host name (offline?)"


def describe_error(err: BaseException, *, within: float | None = None) -> str:
    """A one-line reason for *err*, raised while reaching a server (a socket, TLS or HTTP library error).

    *within* is the deadline (seconds) the operation had, named when it ran out. An error of derptool's
    own (a probe that failed, a name that did not resolve) already says why and is kept as it is; an
    error of a library (httpx) is described by the socket error it wraps.
    """
    if isinstance(err, DerptoolError):
        return str(err)
    if isinstance(err, TimeoutError):  # socket.timeout and asyncio's timeout are this class too
        return f"no answer within {within:g} s" if within is not None else "timed out"
    tls = _tls_reason(err)
    if tls is not None:
        return tls
    if isinstance(err, OSError):
        return _os_reason(err)
    inner = _os_error_inside(err)
    if inner is not None:
        return describe_error(inner, within=within)
    text = str(err) or type(err).__name__
    if any(t in text for t in _RESOLVER_TEXTS):
        return CANNOT_RESOLVE
    if "Connection refused" in text:
        return "connection refused"
    return text.splitlines()[0] if text.strip() else type(err).__name__


def _tls_reason(err: BaseException) -> str | None:
    # An ssl (or socket) error exists only once its module is loaded: describing never loads one (start-up).
    ssl = sys.modules.get("ssl")
    if ssl is None or not isinstance(err, ssl.SSLError):
        return None
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"TLS verification failed: {err.verify_message or err.reason} (give the CA with --ca-file?)"
    return f"TLS error: {err.reason or err}"


def _os_reason(err: OSError) -> str:
    socket = sys.modules.get("socket")
    if socket is not None and isinstance(err, socket.gaierror):
        return CANNOT_RESOLVE
    if err.errno == errno.ECONNREFUSED:
        return "connection refused"
    if err.errno in _UNREACHABLE:
        return os.strerror(err.errno).lower()
    return (err.strerror or str(err)).lower()


def _os_error_inside(err: BaseException) -> OSError | None:
    """The socket or TLS error a library's exception was raised from, if any."""
    seen: set[int] = set()
    inner = err.__cause__ or err.__context__
    while inner is not None and id(inner) not in seen:
        if isinstance(inner, OSError):
            return inner
        seen.add(id(inner))
        inner = inner.__cause__ or inner.__context__
    return None
