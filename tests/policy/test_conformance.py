"""Conformance: derptool validate against the verdicts of Tailscale's control plane.

``tests/data/tailscale-verdicts.json`` holds policies that were sent to Tailscale's control plane with its
answer (BSD-3 data from headscale's compatibility captures; see its ``about``). Verdicts that depend on
the tailnet itself are out of scope for an offline validator and are excluded, and the test says so:
failing policy ``tests`` ('test(s) failed' depends on the tailnet's users and devices), domains 'not
associated with this Tailnet', and the one HTTP 500 (a server error, not a verdict).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from derptool.policy import validate_bytes
from tests.support import repo

DATA = repo.DATA / "tailscale-verdicts.json"


def _out_of_scope(case: dict[str, Any]) -> str | None:
    message = case.get("message") or ""
    if case["code"] == 500:
        return "server error (HTTP 500), not a verdict"
    if "test(s) failed" in message:
        return "policy tests fail or pass depending on the tailnet's users and devices"
    if "not associated with this Tailnet" in message:
        return "depends on the tailnet's domain"
    return None


@dataclass
class Agreement:
    total: int = 0
    same_verdict: int = 0
    rejected: int = 0
    same_message: int = 0
    first_message: int = 0
    excluded: dict[str, list[str]] = field(default_factory=dict)
    disagreements: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            "derptool validate vs Tailscale's control plane (tests/data/tailscale-verdicts.json)",
            f"  compared: {self.total} policies; excluded as out of scope for offline validation: "
            f"{sum(len(v) for v in self.excluded.values())}",
        ]
        for reason, ids in sorted(self.excluded.items()):
            lines.append(f"    - {len(ids):3d} excluded: {reason}")
        lines += [
            f"  same verdict (accept/reject): {self.same_verdict}/{self.total} "
            f"= {100 * self.same_verdict / self.total:.1f} %",
            f"  rejected by Tailscale: {self.rejected}; derptool gives Tailscale's exact message for "
            f"{self.same_message} ({100 * self.same_message / max(self.rejected, 1):.1f} %), "
            f"as its first error for {self.first_message}",
        ]
        lines += [f"  disagreement: {d}" for d in self.disagreements]
        return "\n".join(lines)


@pytest.fixture(scope="module")
def agreement() -> Agreement:
    doc = json.loads(DATA.read_text(encoding="utf-8"))
    result = Agreement()
    for case in doc["cases"]:
        reason = _out_of_scope(case)
        if reason:
            result.excluded.setdefault(reason, []).append(case["id"])
            continue
        result.total += 1
        src = json.dumps(case["policy"], indent=2).encode()
        errors = [p.message for p in validate_bytes(src, case["id"]) if p.severity == "error"]
        ours = 400 if errors else 200
        if ours == case["code"]:
            result.same_verdict += 1
        else:
            result.disagreements.append(
                f"{case['id']}: Tailscale {case['code']} {case['message']!r}, derptool {errors[:2]}"
            )
        if case["code"] == 400:
            result.rejected += 1
            if case["message"] in errors:
                result.same_message += 1
                result.first_message += errors[0] == case["message"]
            elif ours == 400:
                result.disagreements.append(
                    f"{case['id']}: other message: Tailscale {case['message']!r}, derptool {errors[:2]}"
                )
    return result


def test_data_keeps_attribution() -> None:
    doc = json.loads(DATA.read_text(encoding="utf-8"))
    assert "BSD-3-Clause" in doc["about"] and "headscale" in doc["about"]
    assert len(doc["cases"]) == 437


def test_agreement_with_tailscale(agreement: Agreement, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\n" + agreement.summary())
    assert agreement.total >= 400
    assert sum(len(v) for v in agreement.excluded.values()) == 437 - agreement.total
    assert agreement.same_verdict / agreement.total >= 0.97
    assert agreement.same_message / agreement.rejected >= 0.95


def test_every_rejection_in_scope_is_found(agreement: Agreement) -> None:
    """No policy Tailscale rejects passes derptool (the costly direction for a CI gate)."""
    missed = [d for d in agreement.disagreements if "Tailscale 400" in d and "derptool []" in d]
    assert missed == []
