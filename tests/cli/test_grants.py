"""``derptool grants``: via grants with their tagOwners, validated, merged idempotently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from derptool import hujson
from derptool.cli import app
from derptool.policy.validate import validate_bytes

runner = CliRunner()


def errors(src: bytes) -> list[str]:
    return [p.message for p in validate_bytes(src, "f") if p.severity == "error"]


def test_hujson_output_validates_and_explains() -> None:
    result = runner.invoke(app, ["grants", "--src", "autogroup:member", "--via", "tag:exit-eu", "--via", "tag:exit-ch"])
    assert result.exit_code == 0, result.stderr
    out = result.stdout.encode()
    assert hujson.format(out) == out
    assert errors(out) == []
    data = hujson.loads(out)
    assert data["grants"] == [
        {"src": ["autogroup:member"], "dst": ["autogroup:internet"], "ip": ["*"], "via": ["tag:exit-eu", "tag:exit-ch"]}
    ]
    assert data["tagOwners"] == {"tag:exit-eu": ["autogroup:admin"], "tag:exit-ch": ["autogroup:admin"]}
    assert "leaves only through exit nodes tagged tag:exit-eu or tag:exit-ch" in result.stdout


def test_json_with_dst_owner_and_tagged_source() -> None:
    result = runner.invoke(
        app,
        [
            "grants",
            "--src",
            "tag:ci,alice@example.com",
            "--via",
            "tag:router-eu",
            "--dst",
            "10.20.0.0/16",
            "--owner",
            "group:ops",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["grants"][0]["dst"] == ["10.20.0.0/16"]
    assert data["grants"][0]["src"] == ["tag:ci", "alice@example.com"]
    assert data["tagOwners"] == {"tag:ci": ["group:ops"], "tag:router-eu": ["group:ops"]}
    policy = {"groups": {"group:ops": ["o@example.com"]}, **data}
    assert errors(json.dumps(policy).encode()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--src", "autogroup:member", "--via", "group:exit"], "via can only be a tag"),
        (["--src", "autogroup:member", "--via", "tag:1bad"], "tag names must start with a letter"),
        (["--src", "autogroup:member", "--via", "tag:e", "--dst", "0.0.0.0/0"], "leave --dst out"),
        (["--src", "autogroup:member", "--via", "tag:e", "--ip", "tcp:0"], "first port must be >0"),
        (["--src", "autogroup:internet", "--via", "tag:e"], "not valid as a source"),
        (["--src", "autogroup:member", "--via", "tag:e", "--diff"], "--diff needs --apply"),
    ],
)
def test_bad_values_exit_2_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["grants", *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_apply_merges_and_is_idempotent(tmp_path: Path) -> None:
    policy = tmp_path / "policy.hujson"
    original = (
        b'{\n\t"groups": {"group:eu": ["a@example.com"]}, // people\n'
        b'\t"tagOwners": {"tag:exit-eu": ["group:eu"]},\n'
        b'\t"grants": [\n\t\t{"src": ["*"], "dst": ["*"], "ip": ["*"]}, // open\n\t],\n}\n'
    )
    policy.write_bytes(original)
    args = ["grants", "--src", "group:eu", "--via", "tag:exit-eu", "--via", "tag:exit-nl", "--apply", str(policy)]
    diff = runner.invoke(app, [*args, "--diff"])
    # the inline tagOwners object stays on one line
    assert diff.exit_code == 0
    assert '+\t"tagOwners": {"tag:exit-eu": ["group:eu"], "tag:exit-nl": ["autogroup:admin"]},' in diff.stdout
    assert policy.read_bytes() == original
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.stderr
    src = policy.read_bytes()
    data = hujson.loads(src)
    assert data["tagOwners"] == {"tag:exit-eu": ["group:eu"], "tag:exit-nl": ["autogroup:admin"]}
    assert len(data["grants"]) == 2 and data["grants"][1]["via"] == ["tag:exit-eu", "tag:exit-nl"]
    assert b"// people" in src and b"// open" in src
    assert errors(src) == []
    second = runner.invoke(app, args)
    assert "already up to date" in second.stdout and policy.read_bytes() == src


def test_apply_refuses_a_grant_naming_an_undefined_group(tmp_path: Path) -> None:
    """Tailscale refuses a policy whose grant names a group it does not define: so does the edit."""
    policy = tmp_path / "p.hujson"
    policy.write_text("{}\n")
    result = runner.invoke(app, ["grants", "--src", "group:nobody", "--via", "tag:e", "--apply", str(policy)])
    assert result.exit_code == 2
    assert 'group not found: "group:nobody"' in result.stderr and "nothing was written" in result.stderr
    assert policy.read_text() == "{}\n"
