"""Turning a ``--map`` value into a :class:`~derptool.derpmap.DERPMap`.

Map specs:

``default``
    The live public map (``https://login.tailscale.com/derpmap/default``), fetched with an ETag cache in the
    user's cache directory. On any failure: the cached copy, else the bundled snapshot, with one notice line
    saying which and how old it is.
``snapshot``
    The bundled snapshot only (no network).
a path, ``-`` (stdin), or an ``http(s)://`` URL
    A DERP map JSON, a policy file (HuJSON) whose ``derpMap`` is merged over the default map, or headscale's
    DERP YAML. A map that holds ``null`` regions or ``OmitDefaultRegions`` is an overlay and is merged over
    the default map too; any other map is taken whole.

Environment: ``DERPTOOL_DEFAULT_MAP_URL`` replaces the live URL, ``DERPTOOL_CACHE_DIR`` the cache directory.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from derptool.derpmap import DERPMap, merge, parse_derpmap
from derptool.errors import DerptoolError, InputError, MapError, NetworkError

DEFAULT_MAP_URL = "https://login.tailscale.com/derpmap/default"
MAX_MAP_BYTES = 4 * 1024 * 1024
"""Refuse maps larger than this (the public map is about 25 KB)."""
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 5.0
DEADLINE = 10.0
"""Overall limit for fetching the live map, name resolution included."""

Notice = Callable[[str], None]
SourceKind = Literal["live", "cache", "snapshot", "file", "stdin", "url"]

_POLICY_KEYS = {
    "acls", "grants", "ssh", "groups", "hosts", "tagowners", "autoapprovers", "nodeattrs", "postures",
    "defaultsrcposture", "ipsets", "tests", "sshtests", "disableipv4", "onecgnatroute", "randomizeclientport",
    "attrconfig",
}


@dataclass(frozen=True)
class LoadedMap:
    """A DERP map and where it came from."""

    derp_map: DERPMap
    description: str
    kind: SourceKind
    overlay: DERPMap | None = None
    """The policy ``derpMap`` (or overlay map) that was merged over the default map, if any."""


# -- the bundled snapshot -----------------------------------------------------------------------


def snapshot_date() -> dt.date:
    """The day the bundled snapshot was captured."""
    meta = json.loads(resources.files("derptool.data").joinpath("snapshot-meta.json").read_text("utf-8"))
    return dt.date.fromisoformat(meta["captured"])


def load_snapshot() -> LoadedMap:
    """The bundled snapshot of the public DERP map."""
    raw = resources.files("derptool.data").joinpath("derpmap-snapshot.json").read_bytes()
    dmap = DERPMap.from_trusted(json.loads(raw))  # shipped and tested valid: no validation at run time
    return LoadedMap(dmap, f"bundled snapshot of {snapshot_date().isoformat()}", "snapshot")


def _age(then: dt.datetime | dt.date) -> str:
    today = dt.datetime.now(dt.UTC)
    days = (today - then).days if isinstance(then, dt.datetime) else (today.date() - then).days
    if days <= 0:
        return "from today"
    return f"{days} day{'s' if days != 1 else ''} old"


# -- the live map and its cache ------------------------------------------------------------------


def cache_dir() -> Path:
    """Where the live map is cached (``DERPTOOL_CACHE_DIR``, else the XDG cache directory)."""
    env = os.environ.get("DERPTOOL_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "derptool"


def default_map_url() -> str:
    """The URL of the live default map."""
    return os.environ.get("DERPTOOL_DEFAULT_MAP_URL") or DEFAULT_MAP_URL


@dataclass
class _Cached:
    data: bytes
    etag: str | None
    fetched: dt.datetime


def _cache_paths() -> tuple[Path, Path]:
    d = cache_dir()
    return d / "derpmap-default.json", d / "derpmap-default.meta.json"


def _read_cache(url: str) -> _Cached | None:
    body_path, meta_path = _cache_paths()
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
        if meta.get("url") != url:
            return None
        return _Cached(body_path.read_bytes(), meta.get("etag"), dt.datetime.fromisoformat(meta["fetched"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(url: str, data: bytes, etag: str | None) -> None:
    from derptool.fileio import atomic_write

    body_path, meta_path = _cache_paths()
    meta = {"url": url, "etag": etag, "fetched": dt.datetime.now(dt.UTC).isoformat()}
    try:
        body_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(body_path, data)
        atomic_write(meta_path, json.dumps(meta).encode())
    except (OSError, DerptoolError):
        pass  # a cache that cannot be written only costs a refetch


def fetch_url(url: str, *, etag: str | None = None) -> tuple[int, bytes, str | None]:
    """GET *url* with timeouts and a size cap: ``(status, body, etag)``; 304 gives an empty body.

    Raises :class:`NetworkError` for transport failures, bad statuses and oversized bodies.
    """
    import httpx

    from derptool import __version__

    headers = {"User-Agent": f"derptool/{__version__}", "Accept": "application/json"}
    if etag:
        headers["If-None-Match"] = etag
    timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)

    def get() -> tuple[int, bytes, str | None]:
        try:
            with httpx.Client(timeout=timeout, follow_redirects=True, headers=headers) as client, \
                    client.stream("GET", url) as resp:
                if resp.status_code == 304:
                    return 304, b"", resp.headers.get("ETag", etag)
                if resp.status_code != 200:
                    raise NetworkError(f"{url}: HTTP {resp.status_code} {resp.reason_phrase}".rstrip())
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > MAX_MAP_BYTES:
                    raise NetworkError(f"{url}: map is {int(declared)} bytes, more than the {MAX_MAP_BYTES} allowed")
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > MAX_MAP_BYTES:
                        raise NetworkError(f"{url}: map is larger than the {MAX_MAP_BYTES} bytes allowed")
                return 200, bytes(body), resp.headers.get("ETag")
        except httpx.TimeoutException:
            raise NetworkError(f"{url}: timed out") from None
        except httpx.HTTPError as err:
            raise NetworkError(f"{url}: {_describe_http_error(err)}") from None

    return _with_deadline(get, DEADLINE, url)


def _describe_http_error(err: Exception) -> str:
    text = str(err) or type(err).__name__
    if "Name or service not known" in text or "Temporary failure in name resolution" in text:
        return "cannot resolve the host name (offline?)"
    if "Connection refused" in text:
        return "connection refused"
    return text


def _with_deadline(fn: Callable[[], tuple[int, bytes, str | None]], seconds: float,
                   url: str) -> tuple[int, bytes, str | None]:
    """Run *fn* in a daemon thread and give up after *seconds* (name resolution has no timeout of its own)."""
    result: list[tuple[int, bytes, str | None]] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as err:  # handed to the caller's thread
            error.append(err)

    worker = threading.Thread(target=run, name="derptool-fetch", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise NetworkError(f"{url}: no answer within {seconds:g} s")
    if error:
        raise error[0]
    return result[0]


def load_default(*, notice: Notice | None = None) -> LoadedMap:
    """The live map, else the cached copy, else the bundled snapshot (with a notice saying which and why)."""
    url = default_map_url()
    cached = _read_cache(url)
    try:
        status, body, etag = fetch_url(url, etag=cached.etag if cached else None)
        if status == 304 and cached is not None:
            dmap = parse_derpmap(_decode_json(cached.data, "cached map"), source="cached map")
            _write_cache(url, cached.data, etag)
            return LoadedMap(dmap, f"live map from {url} (not modified since the cached copy)", "live")
        dmap = parse_derpmap(_decode_json(body, url), source=url)
        _write_cache(url, body, etag)
        return LoadedMap(dmap, f"live map from {url}", "live")
    except DerptoolError as err:
        reason = err.message
    if cached is not None:
        try:
            dmap = parse_derpmap(_decode_json(cached.data, "cached map"), source="cached map")
        except DerptoolError:
            pass
        else:
            desc = f"cached map of {cached.fetched.date().isoformat()} ({_age(cached.fetched)})"
            _notify(notice, f"cannot fetch the live DERP map ({reason}); using the {desc}")
            return LoadedMap(dmap, desc, "cache")
    snap = load_snapshot()
    _notify(notice, f"cannot fetch the live DERP map ({reason}); using the {snap.description} "
                    f"({_age(snapshot_date())})")
    return snap


def _notify(notice: Notice | None, message: str) -> None:
    if notice is not None:
        notice(message)


# -- decoding content ------------------------------------------------------------------------------


def _decode_json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise MapError(f"{name}: not valid JSON: {err}") from None


def _looks_like_json(text: bytes) -> bool:
    stripped = text.lstrip()
    return stripped[:1] in (b"{", b"[", b"/", b"") or stripped[:1].isdigit() or stripped[:1] == b'"'


def decode_document(data: bytes, name: str) -> Any:
    """Decode a file's bytes as HuJSON (JSON with comments), or as headscale YAML when it does not look like JSON.

    Plain JSON (the common case for DERP maps) is decoded by the standard library without importing the
    HuJSON parser.
    """
    if _looks_like_json(data):
        try:
            return json.loads(data, parse_constant=_reject_constant)
        except ValueError:
            pass
        from derptool import hujson

        try:
            return hujson.loads(data)
        except hujson.HuJSONError as err:
            raise InputError(f"invalid HuJSON: {err.reason}", file=name, line=err.line, column=err.column) from None
    from derptool.derpmap.headscale import load_yaml

    return load_yaml(data, name)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def classify(data: Any) -> Literal["derpmap", "policy", "unknown"]:
    """What a decoded document is: a DERP map, a policy file, or neither."""
    if not isinstance(data, Mapping):
        return "unknown"
    keys = {str(k).lower() for k in data}
    if "regions" in keys:
        return "derpmap"
    if "derpmap" in keys or keys & _POLICY_KEYS:
        return "policy"
    return "unknown"


def map_from_bytes(data: bytes, name: str, kind: SourceKind, *, base: Callable[[], LoadedMap]) -> LoadedMap:
    """Build a map from a document's bytes; overlays (policy ``derpMap``, null regions) go over ``base()``."""
    if not data.strip():
        raise MapError(f"{name}: empty; expected a DERP map JSON, a policy file or headscale DERP YAML")
    doc = decode_document(data, name)
    what = classify(doc)
    if what == "unknown":
        raise MapError(
            f"{name}: neither a DERP map (no \"Regions\"), a policy file (no \"derpMap\" or other policy "
            "sections) nor headscale DERP YAML (no \"regions\")"
        )
    if what == "policy":
        from derptool.derpmap.overlay import policy_overlay

        overlay = policy_overlay(doc, source=name)
        if overlay is None:
            b = base()
            return LoadedMap(b.derp_map, f"{b.description} ({name} has no derpMap)", kind)
        b = base()
        return LoadedMap(merge(b.derp_map, overlay), f"{name} derpMap over the {b.description}", kind, overlay)
    dmap = parse_derpmap(doc, source=name)
    if dmap.is_overlay:
        b = base()
        return LoadedMap(merge(b.derp_map, dmap), f"{name} over the {b.description}", kind, dmap)
    return LoadedMap(dmap, name, kind)


def load_map(spec: str = "default", *, notice: Notice | None = None) -> LoadedMap:
    """Load the map *spec* names (see the module docstring).

    Raises :class:`InputError` (exit 2) for unreadable or invalid input and :class:`NetworkError` (exit 3)
    when a URL cannot be fetched.
    """
    spec = spec.strip() or "default"
    lowered = spec.lower()

    def base() -> LoadedMap:
        return load_default(notice=notice)

    if lowered == "default":
        return load_default(notice=notice)
    if lowered == "snapshot":
        return load_snapshot()
    if lowered.startswith(("http://", "https://")):
        _, body, _ = fetch_url(spec)
        return map_from_bytes(body, spec, "url", base=base)
    if spec == "-":
        return map_from_bytes(sys.stdin.buffer.read(), "<stdin>", "stdin", base=base)
    from derptool.fileio import read_file

    snap = read_file(spec)
    return map_from_bytes(snap.data, spec, "file", base=base)
