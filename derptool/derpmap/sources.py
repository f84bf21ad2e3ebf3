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

Environment: ``DERPTOOL_DEFAULT_MAP_URL`` replaces the live URL, ``DERPTOOL_CACHE_DIR`` the cache directory
(default: the platform's user cache directory, ``platformdirs.user_cache_dir("derptool")``);
``DERPTOOL_REFRESH=1`` tries the live map now even when a recent failure is remembered (as ``refresh=True``).

Fast failure: with a fallback at hand, the live map's server must start answering (name resolution, connect,
TLS, headers) within :data:`FALLBACK_ANSWER_DEADLINE`, so a network that silently drops packets costs that
long, not :data:`DEADLINE`. A failure is remembered in the cache directory for :data:`FAILURE_MEMORY`
seconds: runs in that time go straight to the cached or bundled map and say so.

A cache that cannot be used (unreadable, bad meta data, an ETag that is not an HTTP header value, a map that
does not parse) is ignored with one notice, and the fallback chain goes on. Every input is held to the limits
of :mod:`derptool.fileio` (size, nesting depth, number length); text in UTF-16/32 or with a byte-order mark is
decoded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from derptool import __version__
from derptool._bundled import data_bytes, data_text
from derptool.derpmap import DERPMap, merge, parse_derpmap
from derptool.errors import DerptoolError, InputError, LimitError, MapError, NetworkError
from derptool.fileio import MAX_FILE_BYTES, atomic_write, check_document_limits, read_file, room_for_depth, to_utf8

DEFAULT_MAP_URL = "https://login.tailscale.com/derpmap/default"
MAX_MAP_BYTES = 4 * 1024 * 1024
"""Refuse maps larger than this (the public map is about 25 KB)."""
DEADLINE = 10.0
"""Overall limit for fetching the live map, name resolution included."""
FALLBACK_ANSWER_DEADLINE = 2.5
"""With the cached or bundled map to fall back on: how long the live map's server may take to start answering."""
FAILURE_MEMORY = 300.0
"""How long (seconds) a failed fetch of the live map is remembered: runs in that time do not try again."""

Notice = Callable[[str], None]
SourceKind = Literal["live", "cache", "snapshot", "file", "stdin", "url"]

_POLICY_KEYS = {
    "acls",
    "grants",
    "ssh",
    "groups",
    "hosts",
    "tagowners",
    "autoapprovers",
    "nodeattrs",
    "postures",
    "defaultsrcposture",
    "ipsets",
    "tests",
    "sshtests",
    "disableipv4",
    "onecgnatroute",
    "randomizeclientport",
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
    meta = json.loads(data_text("snapshot-meta.json"))
    return dt.date.fromisoformat(meta["captured"])


def load_snapshot() -> LoadedMap:
    """The bundled snapshot of the public DERP map."""
    raw = data_bytes("derpmap-snapshot.json")
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
    """Where the live map is cached: ``DERPTOOL_CACHE_DIR``, else the platform's user cache directory
    (``~/.cache/derptool`` or ``$XDG_CACHE_HOME/derptool`` on Linux, ``~/Library/Caches/derptool`` on macOS,
    ``%LOCALAPPDATA%\\derptool\\Cache`` on Windows)."""
    env = os.environ.get("DERPTOOL_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs  # lazy: only the live map's cache needs it, and its import costs start-up time

    return Path(platformdirs.user_cache_dir("derptool", appauthor=False))


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


_CACHE_META_MAX = 64 * 1024


def valid_etag(value: object) -> str | None:
    """*value* when it can be sent back as ``If-None-Match`` (visible ASCII, at most 1 KB), else None."""
    if isinstance(value, str) and 0 < len(value) <= 1024 and all(" " <= c <= "~" for c in value):
        return value
    return None


def _read_cache(url: str, notice: Notice | None = None) -> _Cached | None:
    """The cached copy of *url*, or None (with one notice when a cache exists but cannot be used).

    Only regular files are read (a FIFO or device named like a cache file is ignored, never waited on), each
    at most :data:`MAX_MAP_BYTES`; an unreadable cache directory is ignored with one notice.
    """
    body_path, meta_path = _cache_paths()
    try:
        if not _present(meta_path) and not _present(body_path):
            return None
        meta = _load_cache_meta(meta_path)
        if meta.get("url") != url:
            return None
        raw_etag = meta.get("etag")
        etag = valid_etag(raw_etag)
        if raw_etag is not None and etag is None:
            raise ValueError(f"its ETag {raw_etag!r} is not a valid HTTP header value")
        fetched_text = meta.get("fetched")
        if not isinstance(fetched_text, str):
            raise ValueError("its fetch time is missing")
        fetched = dt.datetime.fromisoformat(fetched_text)
        if fetched.tzinfo is None:
            raise ValueError(f"its fetch time {fetched_text!r} has no time zone")
        from derptool.fileio import read_regular

        data = read_regular(body_path, limit=MAX_MAP_BYTES)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, OverflowError, DerptoolError) as err:
        if isinstance(err, DerptoolError):
            reason = err.message
        elif isinstance(err, OSError):
            reason = err.strerror or str(err)
        else:
            reason = str(err)
        _notify(notice, f"ignoring the cached DERP map in {body_path.parent}: {reason}")
        return None
    return _Cached(data, etag, fetched)


def _present(path: Path) -> bool:
    """Whether *path* exists (a dangling link counts); ``OSError`` when it cannot be known (permission denied)."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    return True


def _load_cache_meta(meta_path: Path) -> dict[str, Any]:
    from derptool.fileio import read_regular

    try:
        raw = read_regular(meta_path, limit=_CACHE_META_MAX)
    except LimitError:
        raise ValueError("its meta data file is too large") from None
    except InputError as err:
        if "no such file" in err.message:
            raise ValueError("its meta data file is missing") from None
        raise
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValueError("its meta data file is not valid JSON") from None
    if not isinstance(meta, dict):
        raise ValueError("its meta data file is not a JSON object")
    return meta


def _write_cache(url: str, data: bytes, etag: str | None) -> None:
    body_path, meta_path = _cache_paths()
    meta = {"url": url, "etag": valid_etag(etag), "fetched": dt.datetime.now(dt.UTC).isoformat()}
    try:
        body_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(body_path, data)
        atomic_write(meta_path, json.dumps(meta).encode())
    except (OSError, DerptoolError):
        pass  # a cache that cannot be written only costs a refetch


def fetch_url(
    url: str, *, etag: str | None = None, where: str = "--map", answer_within: float | None = None
) -> tuple[int, bytes, str | None]:
    """GET *url* by the whole-request :data:`DEADLINE`, with a size cap: ``(status, body, etag)``; 304 gives an
    empty body. *answer_within* (seconds) bounds the time until the answer begins, name resolution included.

    Raises :class:`UsageError` for a malformed URL (named by *where*) and :class:`NetworkError` for transport
    failures, bad statuses, oversized bodies and answers not begun or done in time.
    """
    from derptool.net.deadline import Deadline
    from derptool.net.http import Request, get
    from derptool.net.url import parse_url

    parsed = parse_url(url, where)
    headers = {"User-Agent": f"derptool/{__version__}", "Accept": "application/json"}
    if valid_etag(etag):
        headers["If-None-Match"] = str(etag)
    answer = get(
        Request(
            parsed.text, headers=headers, follow_redirects=True, max_bytes=MAX_MAP_BYTES, answer_within=answer_within
        ),
        Deadline(DEADLINE),
    )
    if answer.status == 304:
        return 304, b"", answer.headers.get("etag", etag)
    if answer.status != 200:
        raise NetworkError(f"{parsed.shown}: HTTP {answer.status} {answer.reason}".rstrip())
    return 200, answer.body, answer.headers.get("etag")


def load_default(*, notice: Notice | None = None, require_live: bool = False, refresh: bool = False) -> LoadedMap:
    """The live map, else the cached copy, else the bundled snapshot (with a notice saying which and why).

    A failure to fetch is remembered for :data:`FAILURE_MEMORY` seconds; until then the live map is not tried
    again unless *refresh* (or ``DERPTOOL_REFRESH=1``). With *require_live*, the live map is always tried and a
    failure raises :class:`NetworkError` (exit 3) instead of falling back: for callers whose answer is wrong
    with an old map (``derptool diff saved.json default``).
    """
    url = default_map_url()
    if url != DEFAULT_MAP_URL:
        from derptool.net.url import parse_url

        parse_url(url, "DERPTOOL_DEFAULT_MAP_URL")  # a malformed setting is a usage error, not a fallback
    cached = _read_cache(url, notice)
    refresh = refresh or os.environ.get("DERPTOOL_REFRESH", "") not in ("", "0")
    failed = None if (require_live or refresh) else recent_failure(url)
    if failed is not None:
        return _fall_back(cached, notice, _remembered(failed))
    try:
        status, body, etag = fetch_url(
            url,
            etag=cached.etag if cached else None,
            where="DERPTOOL_DEFAULT_MAP_URL",
            answer_within=None if require_live else FALLBACK_ANSWER_DEADLINE,
        )
        if status == 304 and cached is not None:
            dmap = parse_derpmap(_decode_json(cached.data, "cached map"), source="cached map")
            _write_cache(url, cached.data, etag)
            _forget_failure()
            return LoadedMap(dmap, f"live map from {url} (not modified since the cached copy)", "live")
        dmap = parse_derpmap(_decode_json(body, url), source=url)
        _write_cache(url, body, etag)
        _forget_failure()
        return LoadedMap(dmap, f"live map from {url}", "live")
    except DerptoolError as err:
        reason = err.message
        network = isinstance(err, NetworkError)  # a map that does not parse is not remembered: the server answered
    if require_live:
        raise NetworkError(
            f"cannot fetch the live DERP map ({reason}); an older copy would not answer the "
            "question: compare with 'snapshot' or a saved file to work offline"
        )
    if network:
        _remember_failure(url, reason)
    return _fall_back(cached, notice, f"cannot fetch the live DERP map ({reason})")


def _fall_back(cached: _Cached | None, notice: Notice | None, why: str) -> LoadedMap:
    """The cached copy, else the bundled snapshot, with one notice: *why*, then which map is used."""
    if cached is not None:
        try:
            dmap = parse_derpmap(_decode_json(cached.data, "cached map"), source="cached map")
        except DerptoolError as err:
            _notify(notice, f"ignoring the cached DERP map in {cache_dir()}: {err}")
        else:
            desc = f"cached map of {cached.fetched.date().isoformat()} ({_age(cached.fetched)})"
            _notify(notice, f"{why}; using the {desc}")
            return LoadedMap(dmap, desc, "cache")
    snap = load_snapshot()
    _notify(notice, f"{why}; using the {snap.description} ({_age(snapshot_date())})")
    return snap


@dataclass(frozen=True)
class Failure:
    """A remembered failure to fetch the live map: when, and why."""

    at: dt.datetime
    reason: str


def _failure_path() -> Path:
    return cache_dir() / "derpmap-default.failed.json"


def recent_failure(url: str, *, now: dt.datetime | None = None) -> Failure | None:
    """The failure to fetch *url* remembered in the cache, when it is less than :data:`FAILURE_MEMORY` old.

    A record that cannot be read (missing, not a regular file, bad JSON, a time in the future) counts as none.
    """
    path = _failure_path()
    try:
        if not path.is_file():  # not a FIFO or a device: opening one could block
            return None
        meta = _load_cache_meta(path)
        at = dt.datetime.fromisoformat(str(meta["failed"]))
        reason = meta.get("reason")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if meta.get("url") != url or at.tzinfo is None or not isinstance(reason, str):
        return None
    age = ((now or dt.datetime.now(dt.UTC)) - at).total_seconds()
    return Failure(at, reason[:300]) if 0 <= age < FAILURE_MEMORY else None


def _remembered(failed: Failure) -> str:
    age = max(0, int((dt.datetime.now(dt.UTC) - failed.at).total_seconds()))
    wait = max(1, int(FAILURE_MEMORY) - age)
    return (
        f"the live DERP map could not be fetched {age} s ago ({failed.reason}); not trying again for {wait} s "
        "(--refresh or DERPTOOL_REFRESH=1 tries now)"
    )


def _remember_failure(url: str, reason: str) -> None:
    from derptool.fileio import atomic_write

    record = {"url": url, "failed": dt.datetime.now(dt.UTC).isoformat(), "reason": reason}
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        atomic_write(_failure_path(), json.dumps(record).encode())
    except (OSError, DerptoolError):
        pass  # not remembering only costs the next run a try


def _forget_failure() -> None:
    with contextlib.suppress(OSError):
        _failure_path().unlink(missing_ok=True)


def _notify(notice: Notice | None, message: str) -> None:
    if notice is not None:
        notice(message)


# -- decoding content ------------------------------------------------------------------------------


def _decode_json(data: bytes, name: str) -> Any:
    data = to_utf8(data)
    check_document_limits(data, name)
    try:
        with room_for_depth():
            return json.loads(data)
    except RecursionError:
        raise LimitError(f"{name}: nested too deeply to decode") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise MapError(f"{name}: not valid JSON: {err}") from None


def _looks_like_json(text: bytes) -> bool:
    stripped = text.lstrip()
    return stripped[:1] in (b"{", b"[", b"/", b"") or stripped[:1].isdigit() or stripped[:1] == b'"'


def decode_document(data: bytes, name: str) -> Any:
    """Decode a file's bytes as HuJSON (JSON with comments), or as headscale YAML when it does not look like JSON.

    Plain JSON (the common case for DERP maps) is decoded by the standard library without importing the
    HuJSON parser. UTF-16/32 text and byte-order marks are decoded first; documents past the limits of
    :mod:`derptool.fileio` (size, nesting depth, number length) raise :class:`LimitError`.
    """
    if len(data) > MAX_FILE_BYTES:
        raise LimitError(f"{name}: larger than the {MAX_FILE_BYTES // (1024 * 1024)} MiB derptool reads")
    try:
        data = to_utf8(data)
    except InputError as err:
        raise InputError(f"{name}: {err.message}") from None
    check_document_limits(data, name)
    try:
        with room_for_depth():
            return _decode_checked(data, name)
    except RecursionError:
        raise LimitError(f"{name}: nested too deeply to decode") from None


def _decode_checked(data: bytes, name: str) -> Any:
    if _looks_like_json(data):
        try:
            return json.loads(data, parse_constant=_reject_constant)
        except ValueError:
            pass
        from derptool import hujson  # lazy: a costly import that plain JSON (most maps) never needs

        try:
            return hujson.loads(data)
        except hujson.HuJSONError as err:
            raise InputError(f"invalid HuJSON: {err.reason}", file=name, line=err.line, column=err.column) from None
    from derptool.derpmap.headscale import load_yaml  # lazy: JSON maps (most) never need it (start-up time)

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
            f'{name}: neither a DERP map (no "Regions"), a policy file (no "derpMap" or other policy '
            'sections) nor headscale DERP YAML (no "regions")'
        )
    if what == "policy":
        from derptool.derpmap.overlay import policy_overlay  # lazy, as load_yaml above

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


def load_map(
    spec: str = "default", *, notice: Notice | None = None, require_live: bool = False, refresh: bool = False
) -> LoadedMap:
    """Load the map *spec* names (see the module docstring).

    Raises :class:`InputError` (exit 2) for unreadable or invalid input and :class:`NetworkError` (exit 3)
    when a URL cannot be fetched, or (*require_live*) when ``default`` cannot be had live.
    """
    spec = spec.strip() or "default"
    lowered = spec.lower()

    def base() -> LoadedMap:
        return load_default(notice=notice, refresh=refresh)

    if lowered == "default":
        return load_default(notice=notice, require_live=require_live, refresh=refresh)
    if lowered == "snapshot":
        return load_snapshot()
    if "://" in spec:  # a file name may hold it too: looks_like_url decides (its module loads only here)
        from derptool.net.url import looks_like_url, parse_url

        if looks_like_url(spec):
            url = parse_url(spec, "--map (or DERPTOOL_MAP)", example="https://example.com/derpmap.json")
            _, body, _ = fetch_url(url.text)
            return map_from_bytes(body, url.shown, "url", base=base)

    if spec == "-":
        return map_from_bytes(read_file("-", raw=True).data, "<stdin>", "stdin", base=base)
    snap = read_file(spec, raw=True)
    return map_from_bytes(snap.data, spec, "file", base=base)
