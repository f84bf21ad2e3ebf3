"""Round trip, decode and format idempotence on every policy of the Tailscale verdict corpus.

The corpus (``tests/data/tailscale-verdicts.json``, BSD-3-Clause, from headscale's captures; see its
``about``) holds policies as data; each is re-indented several ways and commented at every line.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from derptool import hujson
from tests.support.repo import DATA

CORPUS = DATA / "tailscale-verdicts.json"


def _cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(CORPUS.read_text())["cases"]
    return cases


CASES = _cases()


def commented(text: str, rnd: random.Random) -> str:
    """*text* (json.dumps output) with comments, blank lines, CRLF and trailing commas mixed in."""
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines):
        closes_next = i + 1 < len(lines) and lines[i + 1].strip()[:1] in ("]", "}")
        if closes_next and not line.rstrip().endswith((",", "[", "{")) and rnd.random() < 0.5:
            line += ","
        r = rnd.random()
        if r < 0.15:
            line += " // note é"
        elif r < 0.25:
            line = "/* block */ " + line
        elif r < 0.3:
            out.append("")
        elif r < 0.35:
            line += "\r"
        out.append(line)
    return "\n".join(out) + "\n"


def _variants(policy: Any, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    plain = json.dumps(policy, ensure_ascii=False)
    return [plain.encode()] + [
        commented(json.dumps(policy, indent=indent, ensure_ascii=False), rnd).encode() for indent in (2, "\t")
    ]


@pytest.mark.skipif(not CASES, reason=f"verdict corpus not found ({CORPUS})")
def test_corpus_round_trip_and_format() -> None:
    checked = 0
    for n, case in enumerate(CASES):
        data = case["policy"]
        for src in _variants(data, n):
            v = hujson.parse(src)
            assert v.pack() == src, case["id"]
            assert hujson.loads(src) == data, case["id"]
            out = hujson.format(src)
            assert hujson.format(out) == out, case["id"]
            assert hujson.loads(out) == data, case["id"]
            if hujson.is_standard(src):
                assert hujson.is_standard(out), case["id"]
            assert hujson.loads(hujson.standardize(src)) == data
            checked += 1
    assert checked == 3 * len(CASES)
