"""``derptool policy diff`` end to end: files and ``--git REV`` in a repository the test makes, every format
checked line by line, ``--fail-on``, DERP regions with the sites' latency cost, and bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from derptool.cli import app

runner = CliRunner()

TAILNET = {
    "users": [
        {"id": 1, "name": "alice", "email": "alice@example.com"},
        {"id": 2, "name": "bob", "email": "bob@example.com"},
        {"id": 3, "name": "carol", "email": "carol@example.com"},
    ],
    "nodes": {
        "alice-laptop": {"user": "alice", "ipv4": "100.64.0.1", "ipv6": "fd7a:115c:a1e0::1"},
        "bob-laptop": {"user": "bob", "ipv4": "100.64.0.2", "ipv6": "fd7a:115c:a1e0::2"},
        "carol-phone": {"user": "carol", "ipv4": "100.64.0.3", "ipv6": "fd7a:115c:a1e0::3"},
        "db1": {"tags": ["tag:db"], "ipv4": "100.64.0.4", "ipv6": "fd7a:115c:a1e0::4"},
        "db2": {"tags": ["tag:db"], "ipv4": "100.64.0.5", "ipv6": "fd7a:115c:a1e0::5"},
        "web": {"tags": ["tag:web"], "ipv4": "100.64.0.6", "ipv6": "fd7a:115c:a1e0::6"},
    },
}

OLD = """{
  "groups": {"group:eng": ["alice@example.com", "bob@example.com"]},
  "tagOwners": {"tag:db": [], "tag:web": []},
  "acls": [
    {"action": "accept", "src": ["group:eng"], "dst": ["tag:web:443"]},
    {"action": "accept", "src": ["carol@example.com"], "dst": ["tag:db:5432"]},
  ],
  "ssh": [
    {"action": "accept", "src": ["group:eng"], "dst": ["tag:web"], "users": ["deploy"]},
  ],
  "tests": [
    {"src": "carol@example.com", "accept": ["tag:db:5432"]},
  ],
}
"""

NEW = """{
  "groups": {"group:eng": ["alice@example.com", "bob@example.com"]},
  "tagOwners": {"tag:db": [], "tag:web": []},
  "acls": [
    // the database moves from carol to the engineers
    {"action": "accept", "src": ["group:eng"], "dst": ["tag:web:443"]},
    {"action": "accept", "src": ["group:eng"], "proto": "tcp", "dst": ["tag:db:5432"]},
  ],
  "ssh": [
    {"action": "check", "src": ["group:eng"], "dst": ["tag:web"], "users": ["deploy"]},
  ],
  "tests": [
    {"src": "carol@example.com", "accept": ["tag:db:5432"]},
  ],
}
"""


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull}
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("git is missing (CI installs it)")
        pytest.skip("git is not installed")
    (tmp_path / "tailnet.json").write_text(json.dumps(TAILNET))
    _git(tmp_path, "init", "-q")
    (tmp_path / "policy.hujson").write_text(OLD)
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "old")
    (tmp_path / "policy.hujson").write_text(NEW)
    _git(tmp_path, "commit", "-q", "-am", "new")
    return tmp_path


def _run(repo: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        return runner.invoke(app, ["policy", "diff", *args, "--tailnet", "tailnet.json"], env=env)
    finally:
        os.chdir(cwd)


TEST_FAILURE = (
    "test(s) failed: tests[0]: carol@example.com -> tag:db:5432 (tcp): want accept, got deny: "
    "no rule allows 100.64.0.3 to 100.64.0.4:5432"
)


def test_git_markdown_line_by_line(repo: Path) -> None:
    result = _run(repo, "--git", "HEAD~1", "policy.hujson", "--format", "markdown")
    assert result.exit_code == 0, result.output
    new_rule, old_rule = _line(NEW, '"proto": "tcp"'), _line(OLD, '"carol@example.com"], "dst"')
    ssh_new, ssh_old = _line(NEW, '"check"'), _line(OLD, '"users": ["deploy"]')
    test_line = _line(NEW, '{"src": "carol@example.com"')
    summary = "access: 4 gained, 8 lost; ssh: 2 gained, 2 lost; tests: 1 newly failing, 0 newly passing"
    assert result.stdout.splitlines() == [
        f"**Policy diff** `HEAD~1:policy.hujson` → `policy.hujson`: {summary}",
        "",
        "<details><summary>Access gained (4 rows)</summary>",
        "",
        "| from | to | proto | ports | rule |",
        "|---|---|---|---|---|",
        f"| group:eng (2 devices) | tag:db (2 devices) | tcp | 5432 | policy.hujson:{new_rule} acls[1] |",
        "",
        "</details>",
        "",
        "<details><summary>Access lost (8 rows)</summary>",
        "",
        "| from | to | proto | ports | rule |",
        "|---|---|---|---|---|",
        f"| carol-phone | tag:db (2 devices) | tcp,udp,icmp | 5432 | HEAD~1:policy.hujson:{old_rule} acls[1] |",
        "",
        "</details>",
        "",
        "<details><summary>SSH gained (2 rows)</summary>",
        "",
        "| from | to | user | action | rule |",
        "|---|---|---|---|---|",
        f"| group:eng (2 devices) | web | deploy | check | policy.hujson:{ssh_new} ssh[0] |",
        "",
        "</details>",
        "",
        "<details><summary>SSH lost (2 rows)</summary>",
        "",
        "| from | to | user | action | rule |",
        "|---|---|---|---|---|",
        f"| group:eng (2 devices) | web | deploy | accept | HEAD~1:policy.hujson:{ssh_old} ssh[0] |",
        "",
        "</details>",
        "",
        "<details><summary>Tests newly failing (1)</summary>",
        "",
        "| test | message |",
        "|---|---|",
        f"| policy.hujson:{test_line} tests[0] | {TEST_FAILURE} |",
        "",
        "</details>",
    ]


def test_git_github_annotations_point_at_the_new_file(repo: Path) -> None:
    result = _run(repo, "--git", "HEAD~1", "policy.hujson", "--format", "github", "--fail-on", "lost")
    assert result.exit_code == 1, result.output
    rule = _line(NEW, '"proto": "tcp"')  # the old rule for carol was on this line, now replaced
    ssh = _line(NEW, '"check"')
    test_line = _line(NEW, '{"src": "carol@example.com"')
    assert _line(OLD, '"carol@example.com"], "dst"') + 1 == rule  # a comment line was added above it
    summary = "access: 4 gained, 8 lost; ssh: 2 gained, 2 lost; tests: 1 newly failing, 0 newly passing"
    assert result.stdout.splitlines() == [
        f"::notice file=policy.hujson,line={rule},title=policy diff%3A access gained::"
        "group:eng (2 devices) may now reach tag:db (2 devices) (tcp 5432)",
        f"::warning file=policy.hujson,line={rule},title=policy diff%3A access lost::"
        "carol-phone may no longer reach tag:db (2 devices) (tcp,udp,icmp 5432)",
        f"::notice file=policy.hujson,line={ssh},title=policy diff%3A ssh gained::"
        "group:eng (2 devices) may now ssh to web as deploy (check)",
        f"::warning file=policy.hujson,line={ssh},title=policy diff%3A ssh lost::"
        "group:eng (2 devices) may no longer ssh to web as deploy (accept)",
        f"::error file=policy.hujson,line={test_line},title=policy diff%3A tests newly failing::{TEST_FAILURE}",
        f"::notice title=policy diff::{summary}",
    ]


def test_json_rows_one_per_device_pair(repo: Path) -> None:
    (repo / "old.hujson").write_text(OLD)
    result = _run(repo, "old.hujson", "policy.hujson", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {"access", "ssh", "egress", "capabilities", "derp", "tests"}
    assert doc["access"]["gained"] == [
        {"src": s, "dst": d, "proto": "tcp", "ports": "5432"}
        for s in ("alice-laptop", "bob-laptop")
        for d in ("db1", "db2")
    ]
    lost = doc["access"]["lost"]
    assert {(r["src"], r["dst"]) for r in lost} == {("carol-phone", "db1"), ("carol-phone", "db2")}
    assert sorted({r["proto"] for r in lost}) == ["icmp", "icmpv6", "tcp", "udp"]
    assert doc["ssh"]["lost"] == [
        {"src": s, "dst": "web", "user": "deploy", "action": "accept"} for s in ("alice-laptop", "bob-laptop")
    ]
    assert [t["test"] for t in doc["tests"]["newly_failing"]] == ["tests[0]"]
    assert doc["derp"] == {"removed": [], "added": [], "changed": [], "sites": None}


def test_identical_policies_and_fail_on(repo: Path) -> None:
    (repo / "same.hujson").write_text(NEW)
    result = _run(repo, "same.hujson", "policy.hujson", "--fail-on", "gained,lost,ssh,egress,derp,tests")
    assert (result.exit_code, result.stdout) == (0, "no change in access\n")
    (repo / "old.hujson").write_text(OLD)
    assert _run(repo, "old.hujson", "policy.hujson", "--fail-on", "egress,derp").exit_code == 0
    assert _run(repo, "old.hujson", "policy.hujson", "--fail-on", "tests").exit_code == 1
    assert _run(repo, "old.hujson", "policy.hujson", "--fail-on", "gained").exit_code == 1
    assert _run(repo, "policy.hujson", "old.hujson", "--fail-on", "tests").exit_code == 0  # it starts passing


def test_derp_regions_and_the_cost_per_site(repo: Path) -> None:
    (repo / "old.hujson").write_text(NEW)
    with_map = NEW.replace('"tests": [', '"derpMap": {"Regions": {"1": null}},\n  "tests": [')
    (repo / "new.hujson").write_text(with_map)
    reports = repo / "reports"
    reports.mkdir()
    for site, latencies, home in (("east", {1: 10.0, 2: 70.0}, 1), ("west", {1: 60.0, 2: 8.0}, 2)):
        regions = [{"id": k, "latency_ms": v} for k, v in latencies.items()]
        (reports / f"{site}.json").write_text(json.dumps({"regions": regions, "preferred_region": home}))
    args = ("old.hujson", "new.hujson", "--map", "snapshot", "--reports", "reports", "--format", "json")
    result = _run(repo, *args, "--fail-on", "derp")
    assert result.exit_code == 1, result.output
    derp = json.loads(result.stdout)["derp"]
    assert derp["removed"] == [{"id": 1, "code": "nyc", "name": "New York City"}]
    assert (derp["added"], derp["changed"]) == ([], [])
    east = next(s for s in derp["sites"] if s["site"] == "east")
    assert east == {
        "site": "east",
        "before": {"region": 1, "latency_ms": 10.0},
        "after": {"region": 2, "latency_ms": 70.0},
        "increase_ms": 60.0,
    }
    table = _run(repo, "old.hujson", "new.hujson", "--map", "snapshot", "--reports", "reports")
    lines = table.stdout.splitlines()
    assert lines[0] == "no change in access; derp: 1 removed, 0 added, 0 changed"
    assert lines[5].split() == ["removed", "1", "nyc", "New", "York", "City", "New", "York", "City,", "US"]
    assert [line.split() for line in lines[-2:]] == [
        ["east", "nyc", "10.0", "ms", "sfo", "70.0", "ms", "+60.0", "ms"],
        ["west", "sfo", "8.0", "ms", "sfo", "8.0", "ms", "unchanged"],
    ]


def test_html_page_shows_the_derp_change_and_the_sites(repo: Path) -> None:
    (repo / "old.hujson").write_text(NEW)
    with_map = NEW.replace('"tests": [', '"derpMap": {"Regions": {"1": null, "2": null}},\n  "tests": [')
    (repo / "new.hujson").write_text(with_map)
    reports = repo / "reports"
    reports.mkdir()
    (reports / "east.json").write_text(json.dumps({"regions": [{"id": 1, "latency_ms": 10.0}], "preferred_region": 1}))
    result = _run(repo, "old.hujson", "new.hujson", "--map", "snapshot", "--reports", "reports", "--format", "html")
    assert result.exit_code == 0, result.output
    page = result.stdout
    assert page.startswith("<!DOCTYPE html>") and "http://" not in page.split("<svg", 1)[0].lower()
    omitted = set(re.findall(r'data-region-id="(\d+)"[^>]*data-state="omitted"', page))
    assert omitted == {"1", "2"}
    kept = set(re.findall(r'data-region-id="(\d+)"[^>]*data-state="kept"', page))
    assert kept and not kept & omitted
    assert 'data-site="east"' in page
    out = repo / "diff.html"
    written = _run(repo, "old.hujson", "new.hujson", "--map", "snapshot", "--html", str(out))
    assert written.exit_code == 0, written.output
    assert written.stdout.splitlines()[0] == "no change in access; derp: 2 removed, 0 added, 0 changed"
    assert out.read_text(encoding="utf-8").count('data-state="omitted"') == 2


# -- bad input ----------------------------------------------------------------------------------------------------


def test_invalid_old_or_new_gives_that_files_errors_and_no_diff(repo: Path) -> None:
    (repo / "old.hujson").write_text(OLD)
    (repo / "bad.hujson").write_text('{\n  "acls": [{"action": "deny", "src": ["*"], "dst": ["*:*"]}],\n}\n')
    result = _run(repo, "old.hujson", "bad.hujson")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("derptool: error: NEW bad.hujson:2:")
    assert lines[-1].startswith("derptool: error: 1 validation error(s); no diff")
    (repo / "broken.hujson").write_text('{"acls": [\n  {"action": "accept",,}]}')
    result = _run(repo, "broken.hujson", "old.hujson")
    assert result.exit_code == 1
    assert result.stderr.startswith("derptool: error: OLD broken.hujson:2:")


@pytest.mark.parametrize(
    ("tailnet", "why"),
    [
        (None, "missing"),
        (b"{not json", "malformed"),
        (b'{"users": [], "nodes": {"a": {"ipv4": NaN}}}', "NaN address"),
        (b'{"users": 5}', "wrong type"),
        (b"[]", "not an object"),
    ],
)
def test_tailnet_missing_or_malformed_is_one_line_exit_2(repo: Path, tailnet: bytes | None, why: str) -> None:
    (repo / "old.hujson").write_text(OLD)
    target = repo / "tailnet.json"
    if tailnet is None:
        target.unlink()
    else:
        target.write_bytes(tailnet)
    result = _run(repo, "old.hujson", "policy.hujson")
    assert result.exit_code == 2, why
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("derptool: error: "), why
    assert "Traceback" not in result.stderr


def test_tailnet_fifo_and_oversized_are_refused(repo: Path) -> None:
    (repo / "old.hujson").write_text(OLD)
    big = repo / "big.json"
    with big.open("wb") as f:
        f.truncate(17 * 1024 * 1024)
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        result = runner.invoke(app, ["policy", "diff", "old.hujson", "policy.hujson", "--tailnet", "big.json"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1


def test_unknown_revision_and_missing_git_are_one_line_exit_2(repo: Path, tmp_path_factory: Any) -> None:
    result = _run(repo, "--git", "no-such-rev", "policy.hujson")
    assert result.exit_code == 2
    assert result.stderr.startswith("derptool: error: --git no-such-rev: git cannot read policy.hujson")
    assert len(result.stderr.splitlines()) == 1
    result = _run(repo, "--git", "HEAD~1", "missing.hujson")
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    empty = tmp_path_factory.mktemp("nogit")
    result = _run(repo, "--git", "HEAD~1", "policy.hujson", env={"PATH": str(empty)})
    assert result.exit_code == 2
    assert result.stderr == (
        "derptool: error: --git needs the git command, which is not installed (or give OLD and NEW files)\n"
    )
    outside = tmp_path_factory.mktemp("plain")
    (outside / "tailnet.json").write_text(json.dumps(TAILNET))
    (outside / "policy.hujson").write_text(NEW)
    result = _run(outside, "--git", "HEAD~1", "policy.hujson")
    assert result.exit_code == 2 and "not a git repository" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["old.hujson", "policy.hujson", "--fail-on", "lost,bogus"],
        ["old.hujson", "policy.hujson", "--fail-on", ","],
        ["old.hujson"],
        ["a", "b", "c"],
        ["--git", "HEAD~1", "old.hujson", "policy.hujson"],
        ["--git", "-x", "policy.hujson"],
        ["--git", "HEAD~1", "-"],
        ["-", "-"],
        ["old.hujson", "policy.hujson", "--format", "yaml"],
    ],
)
def test_usage_errors_exit_2(repo: Path, args: list[str]) -> None:
    (repo / "old.hujson").write_text(OLD)
    result = _run(repo, *args)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("derptool: error: ")


def test_hostile_policy_inputs(repo: Path) -> None:
    (repo / "old.hujson").write_text(OLD)
    fifo = repo / "fifo.hujson"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as fh:
            fh.write(b"{ broken")

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    result = _run(repo, "old.hujson", "fifo.hujson")
    writer.join(5)
    assert result.exit_code == 1 and result.stderr.startswith("derptool: error: NEW fifo.hujson:1:")
    (repo / "nan.hujson").write_text('{"acls": [{"action": "accept", "src": ["*"], "dst": [NaN]}]}')
    result = _run(repo, "old.hujson", "nan.hujson")
    assert result.exit_code == 1 and result.stderr.startswith("derptool: error: NEW nan.hujson:1:")
    (repo / "types.hujson").write_text('{"acls": {"action": "accept"}, "ssh": 5}')
    result = _run(repo, "types.hujson", "old.hujson")
    assert result.exit_code == 1 and result.stdout == ""
    assert all(line.startswith("derptool: error: ") for line in result.stderr.splitlines())


def test_hostile_latency_sources(repo: Path) -> None:
    (repo / "old.hujson").write_text(OLD)
    (repo / "bad.json").write_text('{"regions": [{"id": "x", "latency_ms": NaN}], "preferred_region": []}')
    result = _run(repo, "old.hujson", "policy.hujson", "--map", "snapshot", "--reports", "bad.json")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith("derptool: error: ") and "Traceback" not in result.stderr
    result = _run(repo, "old.hujson", "policy.hujson", "--map", "snapshot", "--prometheus", "http://127.0.0.1:9")
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.stderr
    result = _run(repo, "old.hujson", "policy.hujson", "--prometheus", "not a url")
    assert result.exit_code == 2 and "Traceback" not in result.stderr
