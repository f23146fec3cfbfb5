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


def test_what_was_written_but_not_flushed_is_written(tmp_path: Path) -> None:
    result = run_with('sys.stdout.write("out, unflushed")\nsys.stderr.write("err")', tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "out, unflushed", "err")


def test_exit_functions_run(tmp_path: Path) -> None:
    result = run_with('atexit.register(lambda: print("exit function ran"))\n'
                      "raise SystemExit(3)", tmp_path)
    assert (result.returncode, result.stdout) == (3, "exit function ran\n")


def test_an_output_that_cannot_be_flushed_exits_120_as_python_does(tmp_path: Path) -> None:
    result = run_with('sys.stdout.write("lost")\nos.close(1)', tmp_path)
    assert result.returncode == 120


def test_a_thread_still_running_is_waited_for(tmp_path: Path) -> None:
    result = run_with("def late():\n    time.sleep(0.3)\n    print('the thread finished')\n"
                      "threading.Thread(target=late).start()\nraise SystemExit(4)", tmp_path)
    assert (result.returncode, result.stdout) == (4, "the thread finished\n")


def test_an_error_is_a_traceback_and_exit_1(tmp_path: Path) -> None:
    result = run_with('raise RuntimeError("a bug")', tmp_path)
    assert result.returncode == 1
    assert "RuntimeError: a bug" in result.stderr


def test_the_console_script_and_python_m_fodhash_end_through_run() -> None:
    root = Path(__file__).resolve().parents[2]
    assert 'fodhash = "fodhash.entry:run"' in (root / "pyproject.toml").read_text()
    assert "run()" in (root / "fodhash" / "__main__.py").read_text()
