"""Every table fits the output width ($COLUMNS, else 100 columns off a terminal); --wide shows values in full."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from typer.testing import CliRunner

from derptool.cli import app
from derptool.cli._output import fit_widths, table
from tests.support.maps import derp_map, region, stun_node
from tests.support.ports import free_udp_port
from tests.support.repo import REPO
from tests.support.stun_responder import StunResponder

runner = CliRunner()
WIDTHS = (80, 100, 200)
IMPACT = REPO / "tests" / "data" / "impact"


def table_lines(text: str) -> list[str]:
    """The lines of every table in *text*: from the header (the line above a rule of dashes) to a blank line."""
    lines = text.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        if i and line.strip() and set(line) <= {"-", " "} and "--" in line:
            j = i - 1
            while j < len(lines) and lines[j].strip():
                out.append(lines[j])
                j += 1
    return out


def _latency_map(tmp_path: Path, responder: StunResponder) -> str:
    fast = responder.add("127.0.41.1", delay_ms=1)
    dead = stun_node("dead-node-with-a-long-name-that-explains-itself", 902, HostName="127.0.41.2")
    dead["STUNPort"] = free_udp_port("127.0.41.2")
    data = derp_map(
        region(901, [stun_node("901a", 901, fast)], RegionName="A region name long enough to need shortening"),
        region(902, [dead], RegionName="Another region whose name is long too, and then some"),
    )
    path = tmp_path / "map.json"
    path.write_text(json.dumps(data))
    return str(path)


def _policy_files(tmp_path: Path) -> tuple[str, str]:
    policy = {
        "tagOwners": {"tag:exit-with-a-rather-long-tag-name": ["autogroup:admin"]},
        "acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["*:*"]}],
        "autoApprovers": {"exitNode": ["tag:exit-with-a-rather-long-tag-name"]},
    }
    nodes: dict[str, Any] = {
        f"laptop-of-someone-with-a-long-name-{i}": {"user": "alice", "ipv4": f"100.64.0.{i + 1}"} for i in range(3)
    }
    nodes["exit-node-in-a-far-away-data-centre"] = {
        "tags": ["tag:exit-with-a-rather-long-tag-name"],
        "ipv4": "100.64.0.9",
        "routable_ips": ["0.0.0.0/0", "::/0", "10.20.30.0/24", "10.20.31.0/24", "10.20.32.0/24"],
        "approved_routes": ["0.0.0.0/0", "::/0", "10.20.30.0/24", "10.20.31.0/24", "10.20.32.0/24"],
    }
    tailnet = {"users": [{"id": 1, "name": "alice", "email": "alice@example.com"}], "nodes": nodes}
    (tmp_path / "policy.json").write_text(json.dumps(policy))
    (tmp_path / "tailnet.json").write_text(json.dumps(tailnet))
    return str(tmp_path / "policy.json"), str(tmp_path / "tailnet.json")


def _policy_diff(tmp_path: Path) -> list[str]:
    old, tailnet = _policy_files(tmp_path)
    new = tmp_path / "new.json"
    data = json.loads(Path(old).read_text())
    data["acls"] = [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:22"]}]
    new.write_text(json.dumps(data))
    return ["policy", "diff", old, str(new), "-t", tailnet, "--map", "snapshot"]


Case = Callable[[Path, StunResponder], list[str]]
CASES: dict[str, Case] = {
    "map": lambda tmp, r: ["map", "--map", "snapshot"],
    "latency": lambda tmp, r: ["latency", "--map", _latency_map(tmp, r), "--timeout", "1s", "--no-ipv6"],
    "nat": lambda tmp, r: ["nat", "--map", _latency_map(tmp, r), "--timeout", "1s"],
    "diff": lambda tmp, r: ["diff", "snapshot", _latency_map(tmp, r)],
    "impact": lambda tmp, r: ["impact", "--keep", "us", "--map", "snapshot", *map(str, sorted(IMPACT.glob("*.json")))],
    "policy compile": lambda tmp, r: ["policy", "compile", *_flag_t(_policy_files(tmp))],
    "policy egress": lambda tmp, r: ["policy", "egress", *_flag_t(_policy_files(tmp))],
    "policy diff": lambda tmp, r: _policy_diff(tmp),
    "check": lambda tmp, r: ["check", f"127.0.41.3:{free_udp_port('127.0.41.3')}", "--timeout", "500ms"],
}


def _flag_t(files: tuple[str, str]) -> list[str]:
    return [files[0], "-t", files[1]]


@pytest.mark.parametrize("name", list(CASES))
def test_every_table_fits_80_100_and_200_columns(name: str, tmp_path: Path, responder: StunResponder) -> None:
    argv = CASES[name](tmp_path, responder)
    natural = 0
    for width in WIDTHS:
        result = runner.invoke(app, argv, env={"COLUMNS": str(width)})
        assert result.exit_code in (0, 1), result.output
        lines = table_lines(result.stdout)
        assert lines, f"{name}: no table in\n{result.stdout}"
        too_long = [line for line in lines if cell_len(line) > width]
        assert not too_long, f"{name} at {width} columns:\n" + "\n".join(too_long)
        wide = runner.invoke(app, [*argv, "--wide"], env={"COLUMNS": str(width)})
        wide_lines = table_lines(wide.stdout)
        assert not any("…" in line for line in wide_lines), f"{name} --wide cut a value"
        natural = max(cell_len(line) for line in wide_lines)
        if natural > width:  # the fitted table used the whole width and cut values with an ellipsis
            assert any("…" in line for line in lines) and max(cell_len(line) for line in lines) >= width - 2
        else:
            assert not any("…" in line for line in lines)
    assert natural > 80, f"{name}: the test data makes no table wider than 80 columns"


def test_100_columns_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    result = runner.invoke(app, ["map", "--map", "snapshot"])
    lines = table_lines(result.stdout)
    assert max(cell_len(line) for line in lines) == 100


def test_values_are_cut_with_an_ellipsis_not_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "30")
    text = table(
        [[1, "nyc", "New York City, the one in the United States"], [2, "東京", "東京都千代田区丸の内一丁目"]],
        ["ID", "CODE", "NAME"],
    )
    lines = text.splitlines()
    assert len(lines) == 4 and all(cell_len(line) <= 30 for line in lines)
    assert lines[2] == "1   nyc   New York City, the…"
    assert lines[3].startswith("2   東京  東京都千代田区丸") and lines[3].endswith("…")
    assert "\n" not in table([["line\nbreak", "tab\there"]], ["A", "B"]).splitlines()[2]


def test_widest_columns_give_way_first() -> None:
    assert fit_widths([3, 4, 40, 60], [2, 4, 4, 4], 60) == [3, 4, 23, 24]
    assert fit_widths([3, 4, 40, 60], [2, 4, 4, 4], None) == [3, 4, 40, 60]
    assert fit_widths([5, 5], [5, 5], 4) == [5, 5]  # never below a column's floor


_ALPHABET = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),  # the common case: measured without rich
    st.sampled_from("é€ÿ\xad\u0300\u2026█▊│─—中文한🙂\u200b\u2028"),  # wide, zero-width and near the edges
    st.characters(codec="utf-8"),  # any character a file can hold
)


@settings(max_examples=400, deadline=None)
@given(st.text(_ALPHABET, max_size=30), st.integers(min_value=0, max_value=40))
def test_cell_measures_agree_with_rich(text: str, width: int) -> None:
    """The rich-free measure of one-cell text gives what rich gives, and so does the cut to a width."""
    import rich.cells

    from derptool.cli import _output

    assert _output.cell_len(text) == rich.cells.cell_len(text)
    assert _output.set_cell_size(text, width) == rich.cells.set_cell_size(text, width)
