"""fodhash.entry.run, the console script: the process ends with main's exit code as soon as
main returns, with everything Python's own exit would have done that anyone can see."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_with(main: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """fodhash.entry.run in a child process, with this body as its main."""
    script = f"""import atexit, os, sys, threading, time
import fodhash.entry as entry
def main():
{chr(10).join('    ' + line for line in main.splitlines())}
entry.main = main
entry.run()
print("not reached", file=sys.stderr)
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as usual
    return subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("body", "code"), [
    ("pass", 0),
    ("raise SystemExit(0)", 0),
    ("raise SystemExit(None)", 0),
    ("raise SystemExit(1)", 1),
    ("raise SystemExit(130)", 130),
])
def test_the_exit_code_is_mains(body: str, code: int, tmp_path: Path) -> None:
    result = run_with(body, tmp_path)
    assert result.returncode == code
    assert "not reached" not in result.stderr


def test_a_message_given_to_exit_is_printed_and_exits_1(tmp_path: Path) -> None:
    result = run_with('raise SystemExit("fodhash: something is wrong")', tmp_path)
    assert (result.returncode, result.stderr) == (1, "fodhash: something is wrong\n")


@pytest.mark.parametrize(("body", "code", "out"), [
    # What was written but not flushed is written.
    ('sys.stdout.write("out, unflushed")', 0, "out, unflushed"),
    # Exit functions run.
    ('atexit.register(lambda: print("exit function ran"))\nraise SystemExit(3)', 3,
     "exit function ran\n"),
    # A thread still running is waited for.
    ("def late():\n    time.sleep(0.3)\n    print('the thread finished')\n"
     "threading.Thread(target=late).start()\nraise SystemExit(4)", 4, "the thread finished\n"),
    # An output that cannot be flushed exits 120, as Python's own exit does.
    ('sys.stdout.write("lost")\nos.close(1)', 120, ""),
], ids=["unflushed output", "exit functions", "a running thread", "a failed flush"])
def test_what_pythons_exit_would_do_is_done(body: str, code: int, out: str,
                                            tmp_path: Path) -> None:
    result = run_with(body, tmp_path)
    assert (result.returncode, result.stdout) == (code, out)
    assert "not reached" not in result.stderr


def test_an_error_is_a_traceback_and_exit_1(tmp_path: Path) -> None:
    result = run_with('raise RuntimeError("a bug")', tmp_path)
    assert result.returncode == 1
    assert "RuntimeError: a bug" in result.stderr


def test_the_console_script_and_python_m_fodhash_end_through_run() -> None:
    root = Path(__file__).resolve().parents[2]
    assert 'fodhash = "fodhash.entry:run"' in (root / "pyproject.toml").read_text()
    assert "run()" in (root / "fodhash" / "__main__.py").read_text()
