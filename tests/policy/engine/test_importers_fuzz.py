"""Property-based fuzzing of every tailnet importer: whatever the document, the result is a tailnet or
derptool's documented error (an ``InputError``: exit 2), nothing else.

Documents are the sample of each source with random parts replaced by random JSON values (so the fuzzer
spends its time near the real shapes), plus raw bytes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derptool.errors import InputError
from derptool.policy.engine import parse_tailnet
from derptool.policy.engine.importers import headscale
from derptool.policy.engine.tailnet import Tailnet, from_topology
from tests.policy.engine import tailnet_sources as sources

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "tag:x", "100.64.0.1", "fd7a:115c:a1e0::1", "10.0.0.0/8", "10.0.0.0/33", "10", "1e999"]),
    st.text(max_size=12),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _replace(doc: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    doc[path[0]] = _replace(doc[path[0]], path[1:], new)
    return doc


@st.composite
def mutated(draw: st.DrawFn, sample: Any) -> Any:
    doc = json.loads(json.dumps(sample))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        doc = _replace(doc, path, draw(JSON))
    return doc


def _parses_or_says_why(data: Any) -> None:
    try:
        src = json.dumps(data).encode()
    except ValueError:
        return
    try:
        result = parse_tailnet(src, "fuzz.json")
    except InputError:
        return
    assert isinstance(result, Tailnet)


@SETTINGS
@given(mutated(sources.status()))
def test_status_importer(data: Any) -> None:
    _parses_or_says_why(data)


@SETTINGS
@given(mutated(sources.api_devices()))
def test_api_importer(data: Any) -> None:
    _parses_or_says_why(data)


@SETTINGS
@given(mutated({"nodes": sources.headscale_nodes(), "users": sources.headscale_users()}))
def test_headscale_importer(pair: Any) -> None:
    if not isinstance(pair, dict):
        return
    try:
        data = headscale.to_topology(pair.get("nodes"), "nodes.json", pair.get("users"), "users.json")
        result = from_topology(data)
    except InputError:
        return
    assert isinstance(result, Tailnet)


@SETTINGS
@given(mutated({"users": [{"id": 1, "name": "a"}], "nodes": {"n": {"ipv4": "100.64.0.1", "user": "a"}}}))
def test_tailnet_file(data: Any) -> None:
    _parses_or_says_why(data)


@SETTINGS
@given(st.binary(max_size=200))
def test_raw_bytes(src: bytes) -> None:
    try:
        result = parse_tailnet(src, "fuzz.json")
    except InputError:
        return
    assert isinstance(result, Tailnet)
