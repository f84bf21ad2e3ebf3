"""Ctrl-C (SIGINT) at any moment of a run: ``derptool: interrupted`` on one line, exit 130, no traceback.

The first half second used to print a 23-line ``KeyboardInterrupt`` traceback: the handler came with the
command, after Typer, httpx and pydantic were imported. The entry point now installs it first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.hostile.harness import drip_body, peer

ENTRY = "import sys; from derptool.cli import main; sys.argv[0] = 'derptool'; main()"


def _run(code: str, *args: str, delay: float | None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if delay is not None:
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _assert_interrupted(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 130, (done.returncode, done.stderr)
    assert done.stderr == "derptool: interrupted\n", done.stderr


def test_an_interrupt_while_the_cli_is_still_importing() -> None:
    """The signal arrives right after the handler is installed, before Typer and the command are imported."""
    code = (
        "import os, signal, sys; from derptool.cli import _interrupt; _interrupt.install(); "
        "os.kill(os.getpid(), signal.SIGINT); " + ENTRY
    )
    _assert_interrupted(_run(code, "map", "-m", "snapshot", delay=None))


def test_the_entry_point_installs_the_handler_before_any_heavy_import() -> None:
    code = (
        "import signal, sys; from derptool.cli import _interrupt; import derptool.cli as c; "
        "assert 'typer' not in sys.modules and 'httpx' not in sys.modules, 'heavy imports came first'; "
        "orig = c._install_interrupt\n"
        "def spy():\n    orig(); assert 'typer' not in sys.modules; print('installed first', file=sys.stderr)\n"
        "c._install_interrupt = spy; sys.argv = ['derptool', '--version']; c.main()"
    )
    done = _run(code, delay=None)
    assert "installed first" in done.stderr, done.stderr


@pytest.mark.parametrize("delay", [0.15, 0.25, 0.35, 0.5, 0.7])
def test_an_interrupt_at_any_moment_of_the_first_second(delay: float) -> None:
    """Interrupted early (importing) or late (waiting on a server that drips): the same line and code."""
    with peer(drip_body) as url:
        done = _run(ENTRY, "map", "--map", url + "/m.json", delay=delay)
    if (done.returncode == -signal.SIGINT and not done.stderr) or "init_import_site" in done.stderr:
        # killed before Python ran a line of the program, or inside the interpreter's own `site` start-up (an
        # editable install's path finder imports pathlib there): no program can handle a signal that early
        pytest.skip("the signal came during the interpreter's own start-up, before derptool's first line")
    _assert_interrupted(done)


def test_an_interrupt_during_an_edit_leaves_the_file_and_no_temporary(tmp_path: os.PathLike[str]) -> None:
    from pathlib import Path

    policy = Path(tmp_path) / "p.hujson"
    policy.write_bytes(b'{"hosts":{' + b",".join(b'"h%d":"10.0.0.1"' % i for i in range(90_000)) + b"}}")
    before = policy.read_bytes()
    done = _run(ENTRY, "omit", "-m", "snapshot", "-r", "nyc", "--apply", str(policy), delay=1.0)
    if done.returncode == 0:
        pytest.skip("the edit finished before the signal")
    _assert_interrupted(done)
    assert policy.read_bytes() == before
    assert [p.name for p in Path(tmp_path).iterdir()] == ["p.hujson"]


def test_a_worker_thread_still_running_at_exit_does_not_change_the_exit_code() -> None:
    """A fetch given up on leaves its thread inside httpx; the process still ends at once with the command's code.

    Python's own teardown would wait for the stuck thread (here one that sleeps 30 s), or crash beside it.
    """
    code = (
        "import sys, threading, time\n"
        "import derptool.cli as c, derptool.cli._app as a\n"
        "def busy():\n    while True: [str(i) for i in range(1000)]\n"
        "def app(**kw):\n"
        "    threading.Thread(target=busy, daemon=True).start()\n"
        "    threading.Thread(target=time.sleep, args=(30,)).start()\n"
        "    print('result'); raise SystemExit(3)\n"
        "a.app = app; sys.argv = ['derptool']; c.main()"
    )
    started = time.monotonic()
    done = _run(code, delay=None)
    assert (done.returncode, done.stdout) == (3, "result\n"), done
    assert time.monotonic() - started < 15, "the exit waited for the stuck thread"
