"""action.yml run as a runner runs it (tests/actions_runner.py): bash, a pull-request event
payload, GITHUB_OUTPUT / GITHUB_ENV / GITHUB_STEP_SUMMARY files, a local bare repository as
the remote, an HTTP server standing in for the forge's API, and the real git, fodhash and
Nix. The inputs are those of the workflows in docs/ci.md, evaluated for the event.

The `uses:` steps (install-nix-action, actions/cache, upload-artifact) cannot run offline:
Nix is on PATH so the first is skipped, and the others are recorded with their inputs (the
cache's restore and save are played by a folder, so the kept results go from one run to the
next as on a runner).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from actions_runner import Job, evaluate, interpolate, run_action
from helpers import FIXTURES, ROOT, copy_fixture

pytestmark = pytest.mark.nix

IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@fodhash.invalid",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@fodhash.invalid"}
EXPECTED = json.loads((FIXTURES / "example" / "expected.json").read_text())
BRANCH = "renovate/lockfile"
REPOSITORY = "owner/project"
TOKEN = "ghs_token-of-the-run"  # noqa: S105 (a made-up token the fake API checks)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "commit.gpgsign=false", *args], cwd=cwd, text=True,
                          capture_output=True, check=True, env={**os.environ, **IDENTITY}).stdout.strip()


@dataclass
class Api:
    """The forge's API: records each request; answers `status`."""

    url: str
    status: int = 201
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def api() -> Iterator[Api]:
    record = Api("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            record.requests.append({"path": self.path, "authorization": self.headers["Authorization"],
                                    "body": json.loads(body)})
            self.send_response(record.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield record
    server.shutdown()
    thread.join()


@dataclass
class Forge:
    remote: Path  # the bare repository
    main: str
    head: str  # the bot's pull request's head commit
    pushes: Path  # the pre-receive hook's log of push attempts


@pytest.fixture
def forge(tmp_path: Path) -> Forge:
    """The example as a repository on a forge, with a bot's pull request on BRANCH: the bot
    bumped an input, the hashes are behind (every one of the example's is stale)."""
    source = copy_fixture("example", tmp_path / "source")
    git(source, "checkout", "-q", "-B", "main")
    git(source, "commit", "-q", "-m", "the example")
    main = git(source, "rev-parse", "HEAD")
    git(source, "checkout", "-q", "-b", BRANCH)
    (source / "README.md").write_text((source / "README.md").read_text() + "bumped\n")
    git(source, "commit", "-q", "-am", "chore(deps): bump something")
    head = git(source, "rev-parse", "HEAD")
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(remote))
    return Forge(remote, main, head, tmp_path / "pushes.log")


def refuse_pushes(forge: Forge) -> None:
    """What a read-only token or a protected branch makes of a push: refused."""
    hook = forge.remote / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho attempt >> {forge.pushes}\n"
                    "echo 'refusing: the token of this run may not write' >&2\nexit 1\n")
    hook.chmod(0o755)


def log_pushes(forge: Forge) -> None:
    hook = forge.remote / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho attempt >> {forge.pushes}\n")
    hook.chmod(0o755)


_YAML = re.compile(r"^```yaml\n(.*?)^```", re.DOTALL | re.MULTILINE)


def documented_workflow(marker: str) -> dict[str, Any]:
    """The workflow of docs/ci.md whose text holds `marker`."""
    found = [yaml.safe_load(block) for block in _YAML.findall((ROOT / "docs" / "ci.md").read_text())
             if marker in block + "```" and "jobs:" in block]
    assert len(found) == 1, marker
    return found[0]


def event_payload(forge: Forge, login: str, *, fork: bool) -> dict[str, Any]:
    head_repo = "contributor/project" if fork else REPOSITORY
    return {"action": "synchronize", "number": 7, "pull_request": {
        "number": 7, "user": {"login": login},
        "head": {"ref": BRANCH, "sha": forge.head, "repo": {"full_name": head_repo}},
        "base": {"ref": "main", "sha": forge.main, "repo": {"full_name": REPOSITORY}}}}


@dataclass
class Run:
    job: Job
    workspace: Path
    with_: dict[str, str]


def run_workflow(workflow: dict[str, Any], tmp_path: Path, forge: Forge, api: Api,
                 payload: dict[str, Any], *, name: str = "run", ref: str | None = None,
                 env: dict[str, str] | None = None, keep_path: bool = False,
                 handlers: dict[str, Any] | None = None, job_name: str | None = None,
                 matrix: dict[str, str] | None = None) -> Run:
    """The workflow's one job: its checkout (a clone of the remote at the `ref:` it asks
    for) and the action's step, with its `with:` evaluated for the event."""
    event_path = tmp_path / f"{name}-event.json"
    event_path.write_text(json.dumps(payload))
    run_id = str(4242 + len(list(tmp_path.glob("*-event.json"))))  # one per run
    github = {"event": payload, "event_name": "pull_request", "event_path": str(event_path),
              "sha": forge.main, "repository": REPOSITORY, "server_url": "https://github.com",
              "api_url": api.url, "run_id": run_id, "run_attempt": "1", "token": TOKEN,
              "head_ref": BRANCH, "ref": "refs/pull/7/merge"}
    contexts = {"github": github, "runner": {"temp": str(tmp_path / name / "temp")},
                "matrix": matrix or {}, "secrets": {}}
    (job,) = [workflow["jobs"][job_name]] if job_name else workflow["jobs"].values()
    checkout = job["steps"][0]
    (action,) = [step for step in job["steps"] if step.get("uses") == "OWNER/fodhash@main"]
    assert checkout["uses"].startswith("actions/checkout@")
    workspace = tmp_path / name / "workspace"
    git(tmp_path, "clone", "-q", str(forge.remote), str(workspace))
    want = ref or interpolate(str((checkout.get("with") or {}).get("ref", "${{ github.sha }}")),
                              contexts)
    git(workspace, "checkout", "-q", "--detach", want)  # as actions/checkout does for a sha
    with_ = {k: interpolate(str(v), contexts) for k, v in (action.get("with") or {}).items()}
    base_env = {**os.environ, **(env or {})}
    if not keep_path:  # the runner has fodhash (this checkout's) on PATH: the action reuses it
        base_env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), base_env["PATH"]])
    for variable in IDENTITY:  # the runner has no git identity: the action brings its own
        base_env.pop(variable, None)
    job_run = run_action(ROOT, inputs=with_, workspace=workspace, temp=tmp_path / name / "temp",
                         github=github, env=base_env, handlers=handlers)
    return Run(job_run, workspace, with_)


BOTS = documented_workflow("dependabot[bot]")


def assert_true_hashes(folder: Path) -> None:
    for file, sites in EXPECTED.items():
        text = (folder / file).read_text()
        for true in sites.values():
            assert true in text, f"{file}: {true} missing"


def assert_lists_every_site(message: str) -> None:
    count = sum(len(sites) for sites in EXPECTED.values())
    assert message.startswith(f"fodhash: update {count} stale hashes"), message
    for file, sites in EXPECTED.items():
        for attrpath, true in sites.items():
            assert re.search(rf"^- {re.escape(file)}:\d+ {re.escape(attrpath)} \(\S+\): \S+ -> "
                             rf"{re.escape(true)}$", message, re.MULTILINE), (attrpath, message)


def test_update_pushes_the_fix_to_the_bots_branch(tmp_path: Path, forge: Forge, api: Api) -> None:
    """A token that can push (a deploy key, an app token or a PAT given to checkout)."""
    log_pushes(forge)
    run = run_workflow(BOTS, tmp_path, forge, api,
                       event_payload(forge, "renovate[bot]", fork=False))
    job = run.job
    assert run.with_["mode"] == "update"  # the docs' expression picks update for the bot
    assert not job.failed, job.log()
    assert job.outputs["result"] == "pushed" and job.outputs["verdict"] == "ok", job.outputs
    assert not job.used("cachix/install-nix-action")  # Nix is on PATH: reused
    assert not job.used("actions/upload-artifact") and not api.requests
    # The remote's branch: one new commit on the bot's, fodhash's files only, true hashes.
    tip = git(forge.remote, "rev-parse", f"refs/heads/{BRANCH}")
    assert tip == job.outputs["commit"] and git(forge.remote, "rev-parse", f"{tip}^") == forge.head
    changed = set(git(forge.remote, "show", "--name-only", "--format=", tip).split())
    assert changed == set(EXPECTED)
    clone = tmp_path / "after"
    git(tmp_path, "clone", "-q", "-b", BRANCH, str(forge.remote), str(clone))
    assert_true_hashes(clone)
    assert_lists_every_site(git(clone, "log", "-1", "--format=%B"))
    assert git(clone, "log", "-1", "--format=%an <%ae>") == "fodhash <fodhash@noreply.invalid>"
    assert f"pushed {tip} to {BRANCH}" in job.summary
    # The result cache of this platform was exported for actions/cache/save.
    (save,) = job.used("actions/cache/save")
    assert json.loads((Path(save.with_["path"]) / "results.json").read_text())["entries"]


@pytest.mark.parametrize("case", ["dependabot-read-only", "fork"])
def test_update_posts_the_patch_where_it_cannot_push(tmp_path: Path, forge: Forge, api: Api,
                                                     case: str) -> None:
    """Dependabot's read-only token: the push is refused (and so is the comment); a fork's
    branch: no push is tried. Either way the patch is attached and its command posted."""
    if case == "fork":
        log_pushes(forge)
    else:
        refuse_pushes(forge)
        api.status = 403
    login = "dependabot[bot]" if case != "fork" else "renovate[bot]"
    run = run_workflow(BOTS, tmp_path, forge, api, event_payload(forge, login, fork=case == "fork"))
    job = run.job
    assert job.failed, "the stale hashes are still on the branch: the job must fail"
    assert job.outputs["result"] == "patch" and job.outputs["verdict"] == "stale", job.outputs
    assert git(forge.remote, "rev-parse", f"refs/heads/{BRANCH}") == forge.head  # unchanged
    assert forge.pushes.exists() == (case != "fork")  # a fork's branch is never tried
    # The artifact: the patch file, which `git am` applies on the bot's branch.
    (upload,) = job.used("actions/upload-artifact")
    assert upload.with_["name"] == "fodhash-patch"
    assert Path(upload.with_["path"]) == Path(job.outputs["patch"])
    assert Path(upload.with_["path"]).read_text().startswith("From ")
    # The comment: posted to the pull request (refused with a read-only token: a warning).
    (request,) = api.requests
    assert request["path"] == f"/repos/{REPOSITORY}/issues/7/comments"
    assert request["authorization"] == f"token {TOKEN}"
    body = request["body"]["body"]
    assert body in job.summary
    if api.status == 403:
        assert any(a.startswith("::warning::fodhash: could not comment") for a in job.annotations)
    assert any(a.startswith("::error::fodhash: stale hashes") for a in job.annotations)
    # Its one command, run as posted on a checkout of the bot's branch, is the fix.
    (command,) = re.findall(r"^```sh\n(.*?)^```", body, re.DOTALL | re.MULTILINE)
    clone = tmp_path / "contributor"
    git(tmp_path, "clone", "-q", "-b", BRANCH, str(forge.remote), str(clone))
    subprocess.run(["bash", "-c", command], cwd=clone, check=True, capture_output=True,
                   env={**os.environ, **IDENTITY})
    assert git(clone, "rev-parse", "HEAD^") == forge.head
    assert_true_hashes(clone)
    assert_lists_every_site(git(clone, "log", "-1", "--format=%B"))


def test_update_needs_the_head_not_the_merge_commit(tmp_path: Path, forge: Forge, api: Api) -> None:
    run = run_workflow(BOTS, tmp_path, forge, api, event_payload(forge, "renovate[bot]", fork=False),
                       ref=forge.main)
    assert run.job.failed
    assert any("head checked out" in a for a in run.job.annotations), run.job.log()
    assert git(forge.remote, "rev-parse", f"refs/heads/{BRANCH}") == forge.head


class Cache:
    """actions/cache/restore and save, played by a folder of saved folders."""

    def __init__(self, store: Path) -> None:
        self.store = store
        store.mkdir()

    def restore(self, with_: dict[str, str]) -> dict[str, str]:
        keys = [with_["key"], *with_.get("restore-keys", "").split()]
        saved = sorted(self.store.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
        for key in keys:
            hit = next((p for p in saved if p.name == key or p.name.startswith(key)), None)
            if hit is not None:
                shutil.copytree(hit, with_["path"], dirs_exist_ok=True)
                return {"cache-hit": str(hit.name == with_["key"]).lower()}
        return {}

    def save(self, with_: dict[str, str]) -> dict[str, str]:
        if not (self.store / with_["key"]).exists():  # a key is saved once, then kept
            shutil.copytree(with_["path"], self.store / with_["key"])
        return {}


def test_check_annotates_summarises_and_keeps_its_cache(tmp_path: Path, forge: Forge,
                                                        api: Api) -> None:
    """The check workflow of docs/ci.md, twice on two fresh machines: the second builds
    nothing, from the results the first kept."""
    workflow = documented_workflow("    steps:\n      - uses: actions/checkout@v4\n"
                                   "      - uses: OWNER/fodhash@main\n```")
    cache = Cache(tmp_path / "cache-store")
    handlers = {"actions/cache/restore": cache.restore, "actions/cache/save": cache.save}
    payload = event_payload(forge, "someone", fork=False)
    builds = []
    for name in ("first", "second"):
        run = run_workflow(workflow, tmp_path, forge, api, payload, name=name, handlers=handlers,
                           env={"FODHASH_CACHE_DIR": str(tmp_path / name / "fodhash-cache")})
        job = run.job
        assert job.failed and job.outputs["verdict"] == "stale", job.log()
        for file in EXPECTED:
            assert any(a.startswith(f"::error file={file},line=") for a in job.annotations), file
        assert "### fodhash check: stale" in job.summary
        rows = [line for line in job.summary.splitlines() if line.startswith("| stale |")]
        assert len(rows) == sum(len(sites) for sites in EXPECTED.values()), job.summary
        assert all(any(true in row for row in rows) for s in EXPECTED.values() for true in s.values())
        builds.append(int(re.search(r"(\d+) FOD build", job.summary)[1]))
    assert builds[0] > 0 and builds[1] == 0, builds


def test_expressions_evaluate_as_on_a_runner() -> None:
    """The evaluator the runner stand-in uses, on the forms action.yml and the docs use."""
    contexts = {"inputs": {"mode": "update", "cache": "true"}, "steps": {"u": {"outputs": {}}},
                "github": {"event": {"pull_request": {"user": {"login": "Dependabot[bot]"}}},
                           "server_url": "https://github.com"}}
    bots = "contains(fromJSON('[\"renovate[bot]\", \"dependabot[bot]\"]'), " \
           "github.event.pull_request.user.login) && 'update' || 'check'"
    assert evaluate(bots, contexts) == "update"
    assert evaluate("steps.u.outputs.verdict || 'none'", contexts) == "none"
    assert evaluate("!cancelled() && inputs.cache == 'true'", contexts) is True
    assert evaluate("github.server_url != 'https://github.com'", contexts) is False


def test_installs_fodhash_from_its_own_checkout_when_missing(tmp_path: Path, forge: Forge,
                                                             api: Api) -> None:
    """A runner without fodhash: the action installs the version its `uses:` line pins (its
    own checkout) into a virtual environment of its own, and runs it."""
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if p and not (Path(p) / "fodhash").exists())
    assert shutil.which("fodhash", path=path) is None
    workflow = {"jobs": {"check": {"steps": [
        {"uses": "actions/checkout@v4"},
        {"uses": "OWNER/fodhash@main", "with": {"args": "vendored", "cache": "false"}}]}}}
    run = run_workflow(workflow, tmp_path, forge, api, event_payload(forge, "x", fork=False),
                       env={"PATH": path}, keep_path=True)
    job = run.job
    venv = tmp_path / "run" / "temp" / "fodhash-venv" / "bin"
    assert (venv / "fodhash").is_file(), job.log()
    assert job.outputs["verdict"] == "stale", job.log()
    assert len([a for a in job.annotations if a.startswith("::error file=vendored.nix")]) == 3


def test_a_platform_matrix_merges_into_one_verdict(tmp_path: Path, forge: Forge, api: Api) -> None:
    """docs/ci.md's matrix with the action, for the one platform this machine has: the
    verify job builds and exports; the merge job, on a fresh machine, imports the artifact
    and gives the verdict without building."""
    work = tmp_path / "configure"
    git(tmp_path, "clone", "-q", str(forge.remote), str(work))
    with (work / "fodhash.toml").open("a") as config:
        config.write("\n[platforms.x86_64-linux]\n")  # as docs/ci.md asks: one per matrix row
    git(work, "commit", "-q", "-am", "fodhash.toml: the platforms of the matrix")
    git(work, "push", "-q", "origin", "HEAD:main")
    main = git(work, "rev-parse", "HEAD")
    workflow = documented_workflow("args: --all --platform all --cached-only --strict")
    payload = event_payload(forge, "someone", fork=False)
    verify = run_workflow(workflow, tmp_path, forge, api, payload, name="verify", ref=main,
                          job_name="verify", matrix={"system": "x86_64-linux"})
    assert verify.job.outputs["verdict"] == "stale", verify.job.log()
    exported = Path(verify.with_["export"])
    assert exported.is_file() and int(re.search(r"(\d+) FOD build", verify.job.summary)[1]) > 0
    # upload-artifact, then download-artifact into the merge job's runner.temp/results.
    results = tmp_path / "merge" / "temp" / "results"
    results.mkdir(parents=True)
    shutil.copy(exported, results / exported.name)
    merge = run_workflow(workflow, tmp_path, forge, api, payload, name="merge", ref=main,
                         job_name="merge",
                         env={"FODHASH_CACHE_DIR": str(tmp_path / "merge" / "fresh-cache")})
    job = merge.job
    assert job.outputs["verdict"] == "stale", job.log()
    assert int(re.search(r"(\d+) FOD build", job.summary)[1]) == 0, job.summary
    stale = [line for line in job.summary.splitlines() if line.startswith("| stale |")]
    assert len(stale) == sum(len(sites) for sites in EXPECTED.values()), job.summary
