"""Every edit of a formatted policy gives a formatted policy.

``omit --apply``, ``region add --apply`` (with and without ``--prefer``/``--omit-default``) and ``grants
--apply`` run once and twice (the same edit and another one after it) on policies that ``derptool fmt``
leaves as they are; the result must still pass ``fmt --check``. Files indented with spaces, and CRLF files,
must be formatted apart from their indentation unit and line ends (``fmt`` itself would turn both into tabs
and LF). A file with no indentation that ends in a commented-out block at column 0 keeps those comments.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from derptool import hujson
from derptool.cli import app
from derptool.cli.fmt import format_document
from derptool.derpmap.sources import load_snapshot
from derptool.edit.document import ApplyResult
from derptool.edit.grants import apply_grants, plan_egress
from derptool.edit.omit import apply_omit, omit_universe, plan_omit
from derptool.edit.region import apply_region, plan_region
from derptool.errors import DerptoolError
from tests.support.repo import EXAMPLES

BASE = load_snapshot().derp_map

# Policies written by hand in Tailscale's layout, each passed through hujson.format below.
HANDWRITTEN = {
    "minimal": b'{\n\t"acls": [],\n}\n',
    "empty": b"{}\n",
    "nulls-aligned": b'{\n\t"derpMap": {\n\t\t"Regions": {\n\t\t\t"7": null, // tok\n\t\t\t"3": null, // sin\n'
    b"\t\t},\n\t},\n}\n",
    "nulls-wide": b'{\n\t"derpMap": {\n\t\t"Regions": {\n\t\t\t"10": null,\n\t\t\t"7": null,\n\t\t},\n\t},\n}\n',
    "inline-regions": b'{\n\t"derpMap": {"Regions": {"7": null}},\n\t"acls": [],\n}\n',
    "trailing-comment": b'{\n\t"derpMap": {\n\t\t"Regions": {\n\t\t\t"7": null,\n\t\t\t// "3": null,\n\t\t},\n'
    b'\t},\n\t// "tagOwners": {},\n}\n',
    "custom-region": b'{\n\t"derpMap": {\n\t\t"OmitDefaultRegions": false,\n\t\t"Regions": {\n\t\t\t"7": null,\n'
    b'\t\t\t"900": {"RegionID": 900, "RegionCode": "own", "Nodes": [{"Name": "900a", '
    b'"RegionID": 900, "HostName": "derp.example.com"}]},\n\t\t},\n\t},\n}\n',
    "home-params": b'{\n\t"derpMap": {\n\t\t"HomeParams": {"RegionScore": {"7": 2.0}},\n\t\t"Regions": {"10": null},'
    b'\n\t},\n\t"tagOwners": {"tag:a": ["autogroup:admin"]},\n\t"grants": [],\n}\n',
    "owners-and-grants": b'{\n\t"groups": {"group:eng": ["a@example.com"]},\n\t"tagOwners": {\n\t\t"tag:x": [],\n'
    b'\t},\n\t"grants": [\n\t\t{"src": ["*"], "dst": ["*"], "ip": ["*"]},\n\t],\n}\n',
}


def formatted_policies() -> dict[str, bytes]:
    out = {name: hujson.format(src) for name, src in HANDWRITTEN.items()}
    out.update({p.stem: hujson.format(p.read_bytes()) for p in sorted(EXAMPLES.glob("*.hujson"))})
    return out


POLICIES = formatted_policies()


def omit(*selectors: str, replace: bool = False) -> Callable[[bytes], ApplyResult]:
    def run(src: bytes) -> ApplyResult:
        plan = plan_omit(omit_universe(BASE, src), omit=list(selectors), allow_empty=True)
        return apply_omit(src, plan, replace=replace, file="p")

    return run


def keep(*selectors: str) -> Callable[[bytes], ApplyResult]:
    def run(src: bytes) -> ApplyResult:
        return apply_omit(src, plan_omit(omit_universe(BASE, src), keep=list(selectors)), file="p")

    return run


def region(rid: int, *, prefer: float | None = None, omit_default: bool = False) -> Callable[[bytes], ApplyResult]:
    plan = plan_region(
        rid,
        f"own{rid}",
        f"Own {rid}",
        [f"derp{rid}.example.com,ipv4=192.0.2.9"],
        prefer=prefer,
        omit_default=omit_default,
    )
    return lambda src: apply_region(src, plan, file="p")


def grants(via: str = "tag:exit-eu") -> Callable[[bytes], ApplyResult]:
    plan = plan_egress(["autogroup:member"], [via])
    return lambda src: apply_grants(src, plan, file="p")


EDITS: dict[str, Callable[[bytes], ApplyResult]] = {
    "omit-tok": omit("tok"),
    "omit-sea": omit("sea"),
    "omit-three-widths": omit("tok", "sea", "sin"),
    "omit-replace": omit("sea", replace=True),
    "keep-eu": keep("eu"),
    "region-900": region(900),
    "region-9000-prefer": region(9000, prefer=0.25),
    "region-901-prefer-omit-default": region(901, prefer=0.5, omit_default=True),
    "grants": grants(),
    "grants-other": grants("tag:exit-us"),
}
SEQUENCES = [(a,) for a in EDITS] + [
    ("omit-tok", "omit-sea"),
    ("omit-sea", "omit-tok"),
    ("omit-tok", "omit-three-widths"),
    ("omit-tok", "omit-tok"),
    ("region-900", "omit-sea"),
    ("omit-sea", "region-9000-prefer"),
    ("region-900", "region-9000-prefer"),
    ("region-9000-prefer", "region-900"),
    ("keep-eu", "omit-replace"),
    ("grants", "grants-other"),
    ("omit-tok", "grants"),
]


def as_tabs(src: bytes, unit: bytes) -> bytes:
    """*src* with each line's leading run of *unit* turned into tabs."""
    if unit == b"\t":
        return src
    return re.sub(rb"(?m)^((?:" + re.escape(unit) + rb")+)", lambda m: b"\t" * (len(m.group(1)) // len(unit)), src)


def as_unit(src: bytes, unit: bytes) -> bytes:
    return re.sub(rb"(?m)^(\t+)", lambda m: unit * len(m.group(1)), src)


def assert_formatted(out: bytes, unit: bytes, crlf: bool) -> None:
    if crlf:
        assert out.count(b"\n") == out.count(b"\r\n"), "a CRLF file got LF lines"
        out = out.replace(b"\r\n", b"\n")
    lf = as_tabs(out, unit)
    result = format_document(lf, "p")
    assert result.error is None
    assert not result.changed, "fmt --check would fail:\n" + result.diff()


REFUSED = {"custom-region": "RegionName is required"}
"""Policies an edit that reads the derpMap may refuse, and why (their own region lacks a name)."""

STYLES = {"tabs": (b"\t", False), "2-spaces": (b"  ", False), "4-spaces": (b"    ", False), "crlf": (b"\t", True)}


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("sequence", SEQUENCES, ids=["+".join(s) for s in SEQUENCES])
def test_every_edit_of_a_formatted_policy_passes_fmt_check(sequence: tuple[str, ...], style: str) -> None:
    """Omit, region add (with --prefer) and grants, first and second runs, tabs, spaces and CRLF."""
    unit, crlf = STYLES[style]
    applied = 0
    for name, policy in POLICIES.items():
        src = as_unit(policy, unit)
        if crlf:
            src = src.replace(b"\n", b"\r\n")
        for step in sequence:
            try:
                result = EDITS[step](src)
            except DerptoolError as err:  # only a policy whose own derpMap is incomplete may be refused
                assert REFUSED.get(name, "\0") in str(err), f"{name}: {step} refused: {err}"
                break
            try:
                assert_formatted(result.new_bytes, unit, crlf)
            except AssertionError as err:
                raise AssertionError(f"policy {name!r}, after {step}: {err}") from None
            src = result.new_bytes
            applied += 1
    assert applied >= (len(POLICIES) - len(REFUSED)) * len(sequence)


def test_second_omit_aligns_the_null_entries_like_fmt() -> None:
    """The reported case, a second ``omit --apply`` adding a wider region ID to an existing derpMap."""
    first = omit("tok", "sin")(b'{\n\t"acls": [],\n}\n').new_bytes
    second = omit("sea")(first).new_bytes
    assert b'\t\t\t"7":  null, // tok' in second
    assert b'\t\t\t"10": null, // sea' in second
    assert hujson.format(second) == second


def test_cli_omit_twice_then_fmt_check(tmp_path: Path) -> None:
    """Through the commands a CI runs: ``omit --apply`` twice, then ``fmt --check`` exits 0."""
    runner = CliRunner()
    policy = tmp_path / "policy.hujson"
    policy.write_bytes(b'{\n\t"acls": [],\n}\n')
    for sel in ("tok", "sea"):
        res = runner.invoke(app, ["omit", "--map", "snapshot", "--region", sel, "--apply", str(policy)])
        assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["fmt", "--check", str(policy)])
    assert res.exit_code == 0, res.output


UNINDENTED = b'{\n"acls": [],\n// "derpMap": {\n//   "Regions": {}\n// },\n}\n'


@pytest.mark.parametrize("edit", ["omit-tok", "region-900", "grants"])
def test_unindented_file_keeps_its_trailing_commented_block(edit: str) -> None:
    """A column-0 commented-out block before the closing brace is not re-indented by an edit."""
    out = EDITS[edit](UNINDENTED).new_bytes
    assert out.startswith(b'{\n"acls": [],\n')
    assert out.endswith(b'\n// "derpMap": {\n//   "Regions": {}\n// },\n}\n')


def test_trailing_comments_of_an_expanded_object_stay_as_written() -> None:
    """Comments at the end of an object an edit appends to keep their own column."""
    src = b'{\n  "derpMap": {\n    "Regions": {\n      "7": null,\n  // "3": null,\n    },\n  },\n}\n'
    out = omit("sea")(src).new_bytes
    assert b'      "10": null, // sea (region 10): Seattle, United States\n  // "3": null,\n    },' in out


def test_inline_object_grown_past_80_bytes_is_laid_out_as_fmt_does() -> None:
    """An inline ``tagOwners`` that an edit makes longer than format's 80-byte line is expanded and
    aligned, as ``fmt`` would do it; one that stays short stays on its line."""
    src = hujson.format(
        b'{\n"tagOwners": {"tag:a": ["autogroup:admin"], "tag:exit-eu": ["autogroup:admin"]},\n"grants": [],\n}\n'
    )
    assert b'"tagOwners": {"tag:a"' in src
    out = grants("tag:exit-us")(src).new_bytes
    assert b'\t"tagOwners": {\n\t\t"tag:a":       ["autogroup:admin"],\n' in out
    assert hujson.format(out) == out
