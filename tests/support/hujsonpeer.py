"""Client for the Go peer ``hujsonpeer`` (Tailscale's Go hujson library behind a JSON-lines pipe).

One process serves many requests: :meth:`GoHuJSON.batch` writes a whole batch from a thread while
reading the answers, so neither side blocks on a full pipe.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BIN_DIR = Path(__file__).resolve().parent / "go" / "bin"


def find_peer() -> str | None:
    """Path of the built ``hujsonpeer`` (tests/support/go/bin, then PATH), or None."""
    local = BIN_DIR / "hujsonpeer"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("hujsonpeer")


SKIP_REASON = (
    "Go peer hujsonpeer not built (needs Go: run .ci/build-go-peers, which builds "
    "tests/support/go/cmd/hujsonpeer into tests/support/go/bin)"
)


@dataclass
class Answer:
    """Go's answer to one request."""

    ok: bool
    output: bytes | None
    error: str
    found: bool = False
    start: int = 0
    end: int = 0
    standard: bool = False
    ns: int = 0


def _request(op: str, data: bytes, patch: bytes | None = None, pointer: str | None = None, repeat: int = 0) -> str:
    req: dict[str, Any] = {"op": op, "input": base64.b64encode(data).decode()}
    if patch is not None:
        req["patch"] = base64.b64encode(patch).decode()
    if pointer is not None:
        req["pointer"] = pointer
    if repeat:
        req["repeat"] = repeat
    return json.dumps(req)


def _answer(line: str) -> Answer:
    d = json.loads(line)
    out = d.get("output")
    return Answer(
        bool(d.get("ok")),
        base64.b64decode(out) if out is not None else None,
        d.get("error", ""),
        bool(d.get("found")),
        int(d.get("start", 0)),
        int(d.get("end", 0)),
        bool(d.get("standard")),
        int(d.get("ns", 0)),
    )


class GoHuJSON:
    """A running ``hujsonpeer``; use as a context manager or call :meth:`close`."""

    def __init__(self, path: str) -> None:
        self._proc = subprocess.Popen(
            [path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8", bufsize=1 << 16
        )

    def batch(self, requests: list[tuple[Any, ...]]) -> list[Answer]:
        """Answers to ``(op, input, patch?, pointer?, repeat?)`` tuples, in order."""
        lines = [_request(*r) + "\n" for r in requests]
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        errors: list[BaseException] = []

        def write() -> None:
            try:
                for line in lines:
                    stdin.write(line)
                stdin.flush()
            except BaseException as err:
                errors.append(err)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        answers = []
        for _ in lines:
            line = stdout.readline()
            if not line:
                raise RuntimeError(f"hujsonpeer exited early ({errors or self._proc.poll()})")
            answers.append(_answer(line))
        writer.join()
        return answers

    def one(self, *request: Any) -> Answer:
        return self.batch([request])[0]

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> GoHuJSON:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
