"""A composite action's steps run as a GitHub or Forgejo runner runs them, for tests.

What a runner does, and this does too: evaluate each step's `if:` (success() unless a status
function is named) and every `${{ }}` in its `env:`, `with:` and `working-directory` against
the contexts (`inputs`, `github` with the event payload, `runner`, `steps`, `env`); run a
`run:` step with `bash --noprofile --norc -eo pipefail FILE` in the workspace, with the
GITHUB_* variables and fresh GITHUB_OUTPUT, GITHUB_ENV and GITHUB_PATH files whose lines
the later steps see (outputs, variables, PATH); collect the job summary and the `::error`
workflow commands; evaluate the action's `outputs`. A `uses:` step cannot run offline: it is
recorded with its evaluated inputs and handed to a handler the test gives, if any.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# ---- expressions ---------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)"
                    r"|(?P<op>==|!=|<=|>=|&&|\|\||[!<>(),\[\]])"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z_*][A-Za-z0-9_\-]*)*))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text.rstrip()):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ValueError(f"cannot read the expression {text!r} at {pos}")
        kind = match.lastgroup or ""
        out.append((kind, match[kind]))
        pos = match.end()
    return out


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()  # GitHub compares strings ignoring case
    return bool(a == b)


class _Parser:
    """expr := or; or := and ('||' and)*; and := not ('&&' not)*; not := '!' not | cmp;
    cmp := primary (op primary)?; primary := literal | name | call | '(' expr ')'."""

    def __init__(self, text: str, contexts: dict[str, Any], status: dict[str, bool]) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.contexts = contexts
        self.status = status

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, want: str | None = None) -> tuple[str, str]:
        token = self.tokens[self.pos]
        if want is not None and token[1] != want:
            raise ValueError(f"expected {want!r}, got {token[1]!r}")
        self.pos += 1
        return token

    def parse(self) -> Any:
        value = self.or_()
        if self.pos != len(self.tokens):
            raise ValueError(f"unexpected {self.peek()!r}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            value = value if _truthy(value) else right
        return value

    def and_(self) -> Any:
        value = self.not_()
        while self.peek() == "&&":
            self.take()
            right = self.not_()
            value = right if _truthy(value) else value
        return value

    def not_(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not _truthy(self.not_())
        return self.cmp()

    def cmp(self) -> Any:
        left = self.primary()
        if self.peek() in ("==", "!="):
            op = self.take()[1]
            right = self.primary()
            return _equal(left, right) == (op == "==")
        return left

    def primary(self) -> Any:
        kind, text = self.take()
        if text == "(":
            value = self.or_()
            self.take(")")
            return value
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        if text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        if self.peek() == "(":
            self.take("(")
            args = []
            while self.peek() != ")":
                args.append(self.or_())
                if self.peek() == ",":
                    self.take()
            self.take(")")
            return self.call(text, args)
        value: Any = self.contexts
        for part in text.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    def call(self, name: str, args: list[Any]) -> Any:
        functions: dict[str, Callable[..., Any]] = {
            "always": lambda: True,
            "success": lambda: not self.status["failed"],
            "failure": lambda: self.status["failed"],
            "cancelled": lambda: False,
            "contains": lambda hay, needle: (any(_equal(x, needle) for x in hay)
                                             if isinstance(hay, list)
                                             else _text(needle).lower() in _text(hay).lower()),
            "startsWith": lambda a, b: _text(a).lower().startswith(_text(b).lower()),
            "fromJSON": json.loads,
            "toJSON": json.dumps,
        }
        return functions[name](*args)


def evaluate(text: str, contexts: dict[str, Any], failed: bool = False) -> Any:
    return _Parser(text, contexts, {"failed": failed}).parse()


def interpolate(text: str, contexts: dict[str, Any], failed: bool = False) -> str:
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: _text(evaluate(m[1], contexts, failed)), text)


def condition(text: Any, contexts: dict[str, Any], failed: bool) -> bool:
    if text is None:
        return not failed
    expr = str(text).strip()
    if expr.startswith("${{") and expr.endswith("}}"):
        expr = expr[3:-2]
    if not re.search(r"\b(always|success|failure|cancelled)\(", expr):
        expr = f"success() && ({expr})"
    return _truthy(evaluate(expr, contexts, failed))


# ---- the runner ----------------------------------------------------------------------------

@dataclass
class Step:
    index: int
    id: str
    uses: str | None = None
    with_: dict[str, str] = field(default_factory=dict)
    ran: bool = False
    outcome: str = "skipped"  # success, failure, skipped
    outputs: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""


@dataclass
class Job:
    steps: list[Step]
    outputs: dict[str, str]
    summary: str
    annotations: list[str]

    @property
    def failed(self) -> bool:
        return any(step.outcome == "failure" for step in self.steps)

    def used(self, prefix: str) -> list[Step]:
        return [s for s in self.steps if s.ran and s.uses and s.uses.startswith(prefix)]

    def log(self) -> str:
        return "\n".join(f"--- step {s.index} {s.id or s.uses or ''}: {s.outcome}\n{s.stdout}{s.stderr}"
                         for s in self.steps)


def _read_outputs(path: Path) -> dict[str, str]:
    """`name=value` lines and `name<<DELIMITER` blocks, as the runner reads them."""
    outputs: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            outputs[name] = "\n".join(lines[i + 1:end])
            i = end + 1
            continue
        if "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
        i += 1
    return outputs


Handler = Callable[[dict[str, str]], dict[str, str] | None]


def run_action(action_path: Path, *, inputs: dict[str, str], workspace: Path, temp: Path,
               github: dict[str, Any], env: dict[str, str],
               handlers: dict[str, Handler] | None = None) -> Job:
    """Run action.yml of `action_path` as one step of a job whose workspace is `workspace`."""
    action = yaml.safe_load((action_path / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    temp.mkdir(parents=True, exist_ok=True)
    files = temp / "_runner"
    files.mkdir(exist_ok=True)
    summary = files / "step_summary.md"
    summary.touch()
    github = {**github, "action_path": str(action_path), "workspace": str(workspace)}
    contexts: dict[str, Any] = {
        "github": github, "runner": {"os": "Linux", "arch": "X64", "temp": str(temp)},
        "steps": {}, "env": {}, "inputs": {}}
    for name, spec in action["inputs"].items():
        default = str(spec.get("default", ""))
        contexts["inputs"][name] = inputs.get(name, interpolate(default, contexts))
    unknown = set(inputs) - set(action["inputs"])
    assert not unknown, f"inputs the action does not have: {unknown}"
    base = {**env, "GITHUB_ACTIONS": "true", "CI": "true", "RUNNER_TEMP": str(temp),
            "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64", "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_ACTION_PATH": str(action_path), "GITHUB_EVENT_PATH": github["event_path"],
            "GITHUB_EVENT_NAME": github["event_name"], "GITHUB_SHA": github["sha"],
            "GITHUB_REPOSITORY": github["repository"], "GITHUB_SERVER_URL": github["server_url"],
            "GITHUB_API_URL": github["api_url"], "GITHUB_RUN_ID": github["run_id"],
            "GITHUB_STEP_SUMMARY": str(summary)}
    added_env: dict[str, str] = {}
    added_path: list[str] = []
    steps: list[Step] = []
    annotations: list[str] = []
    failed = False
    for index, spec in enumerate(action["runs"]["steps"]):
        step = Step(index, spec.get("id", ""), spec.get("uses"))
        steps.append(step)
        contexts["env"] = {**base, **added_env}
        if step.id:
            contexts["steps"][step.id] = {"outputs": step.outputs, "outcome": "skipped",
                                          "conclusion": "skipped"}
        if not condition(spec.get("if"), contexts, failed):
            continue
        step.ran = True
        if step.uses:
            step.with_ = {k: interpolate(str(v), contexts, failed)
                          for k, v in (spec.get("with") or {}).items()}
            handler = next((h for prefix, h in (handlers or {}).items()
                            if step.uses.startswith(prefix)), None)
            step.outputs.update((handler(step.with_) if handler else None) or {})
            step.outcome = "success"
        else:
            outputs, env_file, path_file = (files / f"{kind}_{index}"
                                            for kind in ("output", "env", "path"))
            for file in (outputs, env_file, path_file):
                file.write_text("")
            script = files / f"step_{index}.sh"
            script.write_text(spec["run"])
            step_env = {**base, **added_env,
                        **{k: interpolate(str(v), contexts, failed)
                           for k, v in (spec.get("env") or {}).items()},
                        "GITHUB_OUTPUT": str(outputs), "GITHUB_ENV": str(env_file),
                        "GITHUB_PATH": str(path_file)}
            step_env["PATH"] = os.pathsep.join([*reversed(added_path), step_env["PATH"]])
            cwd = workspace / interpolate(spec.get("working-directory", "."), contexts, failed)
            assert spec.get("shell") == "bash", f"step {index}: a composite step names its shell"
            done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                                  cwd=cwd, env=step_env, capture_output=True, text=True,
                                  check=False, timeout=900)
            step.stdout, step.stderr = done.stdout, done.stderr
            step.outcome = "success" if done.returncode == 0 else "failure"
            step.outputs.update(_read_outputs(outputs))
            added_env.update(_read_outputs(env_file))
            added_path.extend(p for p in path_file.read_text().splitlines() if p)
            annotations.extend(line for line in done.stdout.splitlines() if line.startswith("::"))
        if step.id:
            contexts["steps"][step.id].update(outcome=step.outcome, conclusion=step.outcome)
        failed = failed or step.outcome == "failure"
    outputs = {name: interpolate(str(spec["value"]), contexts, failed)
               for name, spec in action.get("outputs", {}).items()}
    return Job(steps, outputs, summary.read_text(), annotations)
