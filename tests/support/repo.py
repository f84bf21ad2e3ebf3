"""Where things are in the repository, for tests at any depth under tests/."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
"""The repository's root."""
DATA = REPO / "tests" / "data"
"""The tests' recorded data (verdicts, captures, reports, maps)."""
EXAMPLES = REPO / "examples" / "policies"
"""The example policies the README points at."""
SNAPSHOT = REPO / "derptool" / "data" / "derpmap-snapshot.json"
"""The bundled DERP map snapshot."""
GO_BIN = REPO / "tests" / "support" / "go" / "bin"
"""Where .ci/build-go-peers puts the Go peers."""
