"""The repository as users meet it: the pre-commit hook, changelog, license, metadata and the README's claims."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess

from tests.support.repo import REPO


def test_precommit_validate_hook_skips_schemas() -> None:
    """The hook's pattern matched schemas/policy.schema.json (8 bogus errors)."""
    import yaml

    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    hook = hooks["derptool-validate"]

    def selected(path: str) -> bool:  # pre-commit: re.search on files, then not on exclude
        return bool(re.search(hook["files"], path)) and not re.search(hook.get("exclude", "^$"), path)

    assert selected("policy.hujson") and selected("tailscale/acls.json") and selected("my-policy.json")
    assert not selected("schemas/policy.schema.json")
    assert not selected("editor/policy.schema.json")
    assert not selected("package.json")


def test_no_recipe_needs_a_tag() -> None:
    """A clone has no tags and derptool is not on PyPI: every recipe installs a commit that exists here."""
    readme = (REPO / "README.md").read_text()
    changelog = (REPO / "CHANGELOG.md").read_text()
    hooks_doc = (REPO / ".pre-commit-hooks.yaml").read_text()
    for text in (readme, hooks_doc):
        assert not re.search(r"rev: v\d", text) and not re.search(r"derptool[^\s\"]*@v\d", text)
    assert "example.invalid" not in readme + hooks_doc
    revs = set(re.findall(r"\brev: ([0-9a-f]{40})\b", readme))
    pins = set(re.findall(r"git\+https://[^\s\"@]+@([0-9a-f]{40})", readme))
    assert len(revs) == 1 and revs == pins, "one commit for the pre-commit rev and the CI install"
    (commit,) = revs
    if (REPO / ".git").exists():  # the commit is in this repository's history, with the hooks the README uses
        shown = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{commit}:.pre-commit-hooks.yaml"], capture_output=True, text=True
        )
        assert shown.returncode == 0, shown.stderr
        assert "id: derptool-validate" in shown.stdout and "id: derptool-fmt" in shown.stdout
    # The changelog's version headings name pyproject's version; the README says how a tag is made.
    version = importlib.metadata.version("derptool")
    assert f"## v{version}" in changelog and "No release is tagged yet" in changelog
    assert "## Releases" in readme and "git tag -a v" in readme


def test_license_and_metadata() -> None:
    """LICENSE with the headscale notice, SPDX license, classifiers, no placeholder URLs."""
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License") and "Copyright (c) 2020, Juan Font" in text
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "BSD-3-Clause" and project["license-files"] == ["LICENSE"]
    assert any(c.startswith("Programming Language :: Python :: 3.11") for c in project["classifiers"])
    assert not any(c.startswith("License ::") for c in project["classifiers"])  # PEP 639: the SPDX field says it
    for url in project.get("urls", {}).values():
        assert "<" not in url and "example" not in url


def test_readme_claims() -> None:
    """Install from the repository in CI, exact verdict counts, complete metrics, copy an example."""
    readme = (REPO / "README.md").read_text()
    assert "- run: pip install derptool\n" not in readme and "git+" in readme
    assert "409 compared, 28 of the 437" in readme
    metrics_source = (REPO / "derptool" / "net" / "netcheck" / "prometheus.py").read_text()
    for name in set(re.findall(r'"(derptool_[a-z0-9_]+)"', metrics_source)):
        assert f"`{name}`" in readme, name
    assert "cp examples/policies/" in readme
    assert "### Limits" in readme and "10 000 levels" in readme
