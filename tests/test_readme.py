"""Every example in the README runs, against the files it names, so the README cannot drift from the tool.

Each fenced block is found with the line it starts on. Shell blocks run line by line (a ``\\`` joins lines)
with bash, in a temporary directory holding copies of ``examples/`` and ``tests/data/impact/``; a line must
exit 0 unless its comment says ``(exit N`` (``(exit 1)``, ``(exit 1: why)``). The live map they use
(``default``) is the bundled snapshot, served on loopback at ``DERPTOOL_DEFAULT_MAP_URL``, which the README
documents.

A block may carry a marker on the line before it, ``<!-- example: ... -->``:

* ``needs root, nft``: prerequisites ``.ci/run`` provides (root, commands of ``.ci/apt-packages``); the block
  runs where they are (inside a fresh network namespace, so nothing touches the host's firewall) and is a
  failure under ``CI=true`` where they are not (``tests/support/prereq``);
* ``needs <anything else>`` (the network, your DERP server, a running tailscaled, a Prometheus server): the
  test cannot provide it, so every ``derptool`` command of the block is run with ``--help`` appended, which
  proves each subcommand and option name still exists;
* ``output of: CMD``: the block is the exact output of ``CMD``; ``output begins: CMD``: its first lines, then
  a line ``...``.

Python blocks run as written; JSON blocks parse (a tailnet file loads); YAML blocks parse and the recipes in
them (pre-commit hooks, the CI workflow's commands) are checked against the repository.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pytest_httpserver import HTTPServer

from derptool.policy.engine import load_tailnet
from tests.support.prereq import missing_command, missing_root, need
from tests.support.repo import REPO

README = REPO / "README.md"
BIN = Path(sys.executable).parent


@dataclasses.dataclass(frozen=True)
class Block:
    line: int
    lang: str
    text: str
    marker: str

    @property
    def id(self) -> str:
        return f"README.md:{self.line}:{self.lang or 'text'}"


def readme_blocks() -> list[Block]:
    """The fenced blocks of the README, each with the marker comment just before it (or '')."""
    lines = README.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\S*)\s*$", lines[i])
        if fence is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = re.fullmatch(r"<!-- example: (.*) -->", before.strip())
        blocks.append(Block(i + 1, fence.group(1), "\n".join(lines[i + 1 : end]), marker.group(1) if marker else ""))
        i = end + 1
    return blocks


BLOCKS = readme_blocks()


def commands(text: str) -> list[tuple[str, int]]:
    """The block's command lines (continuations joined, comments dropped) with the exit each must give."""
    out: list[tuple[str, int]] = []
    pending = ""
    for raw in text.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line, pending = pending + raw, ""
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        code, _, comment = line.partition("  #")  # a comment follows two spaces; '#' in arguments stays
        want = re.search(r"\(exit (\d)\b", comment)
        out.append((code.strip(), int(want.group(1)) if want else 0))
    return out


@pytest.fixture
def workdir(tmp_path: Path, httpserver: HTTPServer) -> Iterator[tuple[Path, dict[str, str]]]:
    """A directory holding the files the README names, and the environment its commands run in."""
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    shutil.copytree(REPO / "tests" / "data" / "impact", tmp_path / "tests" / "data" / "impact")
    snapshot = (REPO / "derptool" / "data" / "derpmap-snapshot.json").read_bytes()
    httpserver.expect_request("/derpmap/default").respond_with_data(snapshot, content_type="application/json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DERPTOOL_")}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        DERPTOOL_DEFAULT_MAP_URL=httpserver.url_for("/derpmap/default"),
        DERPTOOL_CACHE_DIR=str(tmp_path / ".cache"),
        COLUMNS="120",
    )
    yield tmp_path, env


def run(cmd: str, cwd: Path, env: dict[str, str], *, netns: bool = False) -> subprocess.CompletedProcess[str]:
    argv = ["bash", "-o", "pipefail", "-c", cmd]
    if netns:
        argv = ["unshare", "--net", *argv]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


SHELL = [b for b in BLOCKS if b.lang == "sh" and b.line > 3]  # the first block is .ci/run's (test below)


def test_readme_has_examples_of_every_kind() -> None:
    kinds = {b.lang for b in BLOCKS}
    assert {"sh", "python", "json", "yaml"} <= kinds
    assert len(SHELL) >= 15
    for block in BLOCKS:
        assert block.lang in {"sh", "python", "json", "yaml", "text", "hujson"}, f"{block.id}: say what the block is"


@pytest.mark.parametrize("block", SHELL, ids=lambda b: b.id)
def test_shell_example(block: Block, workdir: tuple[Path, dict[str, str]]) -> None:
    cwd, env = workdir
    needs = [n.strip() for n in block.marker.removeprefix("needs ").split(",")] if block.marker else []
    provided = {"root": missing_root("the example runs as root"), "nft": None}
    if needs and all(n in provided for n in needs):
        need(provided["root"] if "root" in needs else None)
        for name in needs:
            if name != "root":
                need(missing_command(name))
        netns = "root" in needs
    elif needs:  # a prerequisite no test provides: the commands and options must exist
        for cmd, _ in commands(block.text):
            derptool = re.split(r"\s[|>]\s?", cmd)[0]
            if derptool.startswith("derptool "):
                done = run(f"{derptool} --help", cwd, env)
                assert done.returncode == 0, f"{block.id}: {derptool}: {done.stderr}"
        return
    else:
        netns = False
    for cmd, want in commands(block.text):
        done = run(cmd, cwd, env, netns=netns)
        assert done.returncode == want, f"{block.id}: {cmd}: exit {done.returncode}, not {want}\n{done.stderr}"
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.marker.startswith("output of: ")], ids=lambda b: b.id)
def test_output_example(block: Block, workdir: tuple[Path, dict[str, str]]) -> None:
    cwd, env = workdir
    done = run(block.marker.removeprefix("output of: "), cwd, env)
    assert done.returncode == 0, done.stderr
    assert [line.rstrip() for line in done.stdout.strip("\n").splitlines()] == block.text.splitlines()


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.marker.startswith("output begins: ")], ids=lambda b: b.id)
def test_output_beginning_example(block: Block, workdir: tuple[Path, dict[str, str]]) -> None:
    """A block ending in a line '...' shows the first lines of the output, exactly."""
    cwd, env = workdir
    done = run(block.marker.removeprefix("output begins: "), cwd, env)
    assert done.returncode == 0, done.stderr
    shown = block.text.splitlines()
    assert shown[-1].strip() == "..."
    assert done.stdout.splitlines()[: len(shown) - 1] == shown[:-1]


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "python"], ids=lambda b: b.id)
def test_python_example(block: Block, workdir: tuple[Path, dict[str, str]]) -> None:
    cwd, env = workdir
    done = subprocess.run([sys.executable, "-c", block.text], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "json"], ids=lambda b: b.id)
def test_json_example(block: Block, tmp_path: Path) -> None:
    data = json.loads(block.text)
    if "nodes" in data:  # a tailnet file
        path = tmp_path / "tailnet.json"
        path.write_text(block.text, encoding="utf-8")
        assert load_tailnet(str(path)).nodes
    for schema in data.get("json.schemas", []):  # an editor setting: the schema file it names exists
        assert (REPO / schema["url"]).is_file()


def test_yaml_examples(workdir: tuple[Path, dict[str, str]]) -> None:
    cwd, env = workdir
    docs = [yaml.safe_load(b.text) for b in BLOCKS if b.lang == "yaml"]
    hooks = {h["id"] for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))}
    precommit = [d for d in docs if isinstance(d, dict) and "repos" in d]
    assert precommit and all(h["id"] in hooks for d in precommit for r in d["repos"] for h in r["hooks"])
    workflows = [d for d in docs if isinstance(d, dict) and "jobs" in d]
    assert workflows
    shutil.copy(cwd / "examples" / "policies" / "general.hujson", cwd / "policy.hujson")
    for job in (j for w in workflows for j in w["jobs"].values()):
        for step in job["steps"]:
            cmd = step.get("run", "")
            if cmd.startswith("derptool "):  # the pip install of a commit is checked in test_packaging
                done = run(cmd, cwd, env)
                assert done.returncode == 0, f"{cmd}: {done.stdout}{done.stderr}"
    for doc in docs:  # Prometheus' configuration and rules: the metrics they name exist
        text = json.dumps(doc)
        for metric in set(re.findall(r"derptool_[a-z_]+", text)):
            assert any(metric in p.read_text(encoding="utf-8") for p in (REPO / "derptool").rglob("*.py")), metric


def test_ci_runs_the_first_lines_verbatim() -> None:
    """.ci/run runs the README's first line in a clean copy and its second line as CI's test command."""
    first = BLOCKS[0]
    assert first.line == 3 and first.lang == "sh"
    install, test = first.text.splitlines()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert f"'{install}'" in ci, ".ci/run must run the README's first line as written"
    assert ci.rstrip().endswith("\n" + test), ".ci/run must end with the README's second line as written"
    for line in (install, test):  # they work where the system Python refuses pip install
        assert line.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install ")


def test_benchmarks_are_all_listed() -> None:
    readme = README.read_text(encoding="utf-8")
    section = readme[readme.index("## Benchmarks") :]
    section = section[: section.index("\n## ", 1)]
    for script in sorted((REPO / "bench").glob("*.py")):
        assert f"`bench/{script.name}`" in section, script.name


def test_debian_packages_named_by_package() -> None:
    """The README names the packages of .ci/apt-packages (not their commands), as apt-get wants them."""
    readme = README.read_text(encoding="utf-8")
    table = [ln.split()[:2] for ln in (REPO / ".ci" / "apt-packages").read_text().splitlines() if ln[:1].isalpha()]
    for command, package in table:
        assert f"`{package}`" in readme, package
        if command != package:
            assert f"(`{command}`" not in readme and f", `{command}`," not in readme


def test_example_tailnet_passes_every_example_policy(workdir: tuple[Path, dict[str, str]]) -> None:
    cwd, env = workdir
    done = run("derptool validate --strict --tailnet examples/tailnet.json examples/policies/*.hujson", cwd, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not run" not in done.stderr  # the tests ran, against the tailnet
    # The tests do run: a tailnet without the users they name fails them.
    tailnet = json.loads((cwd / "examples" / "tailnet.json").read_text())
    tailnet["users"] = [u for u in tailnet["users"] if u["name"] != "dave"]
    del tailnet["nodes"]["dave-laptop"]
    (cwd / "small.json").write_text(json.dumps(tailnet))
    done = run("derptool validate --tailnet small.json examples/policies/general.hujson", cwd, env)
    assert done.returncode == 1 and "dave@example.com" in done.stdout
