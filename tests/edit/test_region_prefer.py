"""Prefer your own region, keep Tailscale's as fallback: ``region add --prefer`` writes
``HomeParams.RegionScore``, ``validate`` checks scores, ``latency`` says which home they lead to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from derptool import hujson
from derptool.cli import app
from derptool.edit.region import apply_region, plan_region, region_fragment
from derptool.errors import UsageError
from tests.support.maps import derp_map, region, stun_node
from tests.support.stun_responder import StunResponder

runner = CliRunner()
ADD = ["region", "add", "--id", "900", "--code", "home", "--node", "derp.example.com,ipv4=203.0.113.5"]


def test_prefer_writes_a_region_score() -> None:
    result = runner.invoke(app, [*ADD, "--prefer", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["derpMap"]
    assert data["HomeParams"] == {"RegionScore": {"900": 0.1}}
    assert "OmitDefaultRegions" not in data  # Tailscale's regions stay: the fallback
    result = runner.invoke(app, [*ADD, "--prefer", "--prefer-score", "0.25"])
    assert result.exit_code == 0
    text = result.stdout
    assert "HomeParams.RegionScore: latency x score decides the home region" in text
    assert hujson.loads(text)["derpMap"]["HomeParams"] == {"RegionScore": {"900": 0.25}}
    assert "HomeParams" not in runner.invoke(app, ADD).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prefer", "--prefer-score", "1"], "does not prefer the region"),
        (["--prefer", "--prefer-score", "0"], "must be above 0"),
        (["--prefer", "--prefer-score", "-0.5"], "must be above 0"),
        (["--prefer-score", "0.5"], "--prefer-score needs --prefer"),
    ],
)
def test_bad_scores_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, [*ADD, *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_prefer_with_omit_default_warns_there_is_no_fallback() -> None:
    plan = plan_region(900, "home", None, ["derp.example.com"], omit_default=True, prefer=0.1)
    assert any("no Tailscale regions left to fall back to" in n for n in plan.notes)
    assert region_fragment(plan)["derpMap"]["HomeParams"] == {"RegionScore": {"900": 0.1}}
    with pytest.raises(UsageError):
        plan_region(900, "home", None, ["derp.example.com"], prefer=float("nan"))


POLICY = b"""{
\t// who may talk to whom
\t"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
}
"""

WITH_SCORES = b"""{
\t"derpMap": {
\t\t// keep Frankfurt attractive too
\t\t"HomeParams": {"RegionScore": {"4": 0.8}},
\t\t"Regions": {},
\t},
}
"""


def test_apply_adds_the_score_and_keeps_comments_and_other_scores() -> None:
    plan = plan_region(900, "home", None, ["derp.example.com"], prefer=0.1)
    fresh = apply_region(POLICY, plan, file="policy.hujson")
    data = hujson.loads(fresh.new_bytes)
    assert data["derpMap"]["HomeParams"] == {"RegionScore": {"900": 0.1}}
    assert "900" in data["derpMap"]["Regions"] and b"// who may talk to whom" in fresh.new_bytes
    again = apply_region(fresh.new_bytes, plan, file="policy.hujson")
    assert not again.changed
    merged = apply_region(WITH_SCORES, plan, file="policy.hujson")
    data = hujson.loads(merged.new_bytes)
    assert data["derpMap"]["HomeParams"]["RegionScore"] == {"4": 0.8, "900": 0.1}
    assert b"// keep Frankfurt attractive too" in merged.new_bytes
    changed = apply_region(
        merged.new_bytes, plan_region(900, "home", None, ["derp.example.com"], prefer=0.3), file="policy.hujson"
    )
    assert hujson.loads(changed.new_bytes)["derpMap"]["HomeParams"]["RegionScore"] == {"4": 0.8, "900": 0.3}


def test_apply_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "policy.hujson"
    path.write_bytes(POLICY)
    result = runner.invoke(app, [*ADD, "--prefer", "--apply", str(path)])
    assert result.exit_code == 0, result.output
    assert hujson.loads(path.read_bytes())["derpMap"]["HomeParams"]["RegionScore"] == {"900": 0.1}
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 0


def test_validate_checks_region_scores(tmp_path: Path) -> None:
    path = tmp_path / "policy.hujson"
    path.write_text(
        json.dumps(
            {
                "derpMap": {
                    "HomeParams": {"RegionScore": {"900": 0.1, "901": 0.5, "1": -1, "902": 0.2, "4": 0.9}},
                    "Regions": {
                        "900": {
                            "RegionID": 900,
                            "RegionCode": "home",
                            "RegionName": "Home",
                            "Nodes": [{"Name": "900a", "RegionID": 900, "HostName": "derp.example.com"}],
                        },
                        "902": {
                            "RegionID": 902,
                            "RegionCode": "nm",
                            "RegionName": "NM",
                            "NoMeasureNoHome": True,
                            "Nodes": [{"Name": "902a", "RegionID": 902, "HostName": "derp2.example.com"}],
                        },
                        "4": None,
                    },
                }
            }
        )
    )
    result = runner.invoke(app, ["validate", "-f", "json", str(path)])
    findings = {f["message"] for f in json.loads(result.stdout)}
    assert "RegionScore for region 901 has no effect: the region is not in the DERP map" in findings
    assert any("RegionScore -1 for region 1 is ignored by Tailscale" in m for m in findings)
    assert "RegionScore for region 902 has no effect: NoMeasureNoHome regions are never home" in findings
    assert "RegionScore for region 4 has no effect: the region is removed by this derpMap" in findings
    assert not any("region 900" in m and "RegionScore" in m for m in findings)


def test_latency_shows_the_home_a_score_leads_to(responder: StunResponder, tmp_path: Path) -> None:
    near = responder.add("127.0.43.1", delay_ms=5)
    own = responder.add("127.0.43.2", delay_ms=30)
    data = derp_map(region(901, [stun_node("901a", 901, near)]), region(900, [stun_node("900a", 900, own)]))
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(data))
    out = runner.invoke(app, ["latency", "--map", str(plain), "-f", "json"]).stdout
    assert json.loads(out)["preferred_region"] == 901
    assert "RegionScore" not in runner.invoke(app, ["latency", "--map", str(plain)]).stdout
    scored = tmp_path / "scored.json"
    scored.write_text(json.dumps({**data, "HomeParams": {"RegionScore": {"900": 0.1}}}))
    assert (
        json.loads(runner.invoke(app, ["latency", "--map", str(scored), "-f", "json"]).stdout)["preferred_region"]
        == 900
    )
    text = runner.invoke(app, ["latency", "--map", str(scored)]).stdout
    home_line = text.splitlines()[1]
    assert home_line.startswith("Home: r900, chosen by HomeParams.RegionScore")
    assert "by latency alone it would be r901" in home_line
