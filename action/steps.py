"""The parts of action.yml's steps that are not one fodhash call: read the event payload,
turn `fodhash check --json` into annotations and a job summary, post a pull-request comment.

Run by the runner's python3 (3.8 or newer, standard library only), with the variables every
GitHub and Forgejo runner sets: GITHUB_EVENT_PATH, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY,
GITHUB_API_URL, GITHUB_REPOSITORY.

    steps.py event                      pull request fields -> $GITHUB_OUTPUT
    steps.py check OUTPUT CODE          `fodhash check --json` output -> annotations, summary
    steps.py comment NUMBER BODY_FILE   post BODY_FILE on pull request NUMBER (token: $TOKEN)
"""

import json
import os
import sys
import urllib.error
import urllib.request


def _output(**values: str) -> None:
    with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as file:
        for name, value in values.items():
            file.write(f"{name}={value}\n")


def _summary(text: str) -> None:
    with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as file:
        file.write(text)


def event() -> int:
    """The pull request the run is for; `fork` when its branch lives in another repository
    (no token of this repository can push there)."""
    with open(os.environ["GITHUB_EVENT_PATH"], encoding="utf-8") as file:
        payload = json.load(file)
    pull = payload.get("pull_request")
    if not pull:
        _output(pull_request="false")
        return 0
    head_repo = (pull["head"].get("repo") or {}).get("full_name", "")
    base_repo = pull["base"]["repo"]["full_name"]
    _output(pull_request="true", number=str(pull["number"]), head_ref=pull["head"]["ref"],
            head_sha=pull["head"]["sha"], fork=str(head_repo != base_repo).lower())
    return 0


def _cell(text: object) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def check(path: str, code: str) -> int:
    """Print the `::error` lines fodhash wrote (the runner makes them annotations on the
    stale lines), then a table of every site into the job summary; the verdict to outputs."""
    lines = open(path, encoding="utf-8").read().splitlines(keepends=True)  # noqa: SIM115
    for line in lines:
        if line.startswith("::"):
            sys.stdout.write(line)
    text = "".join(line for line in lines if not line.startswith("::"))
    try:
        report = json.loads(text)
    except ValueError:
        _summary(f"### fodhash check\n\nfodhash exited {code} without a report; see the log.\n")
        _output(verdict="failed")
        return 0
    counts = report.get("counts", {})
    bad = [s for s in report["sites"] if s["status"] != "ok"]
    verdict = "ok" if code == "0" else (
        "failed" if counts.get("failed") else "stale" if (counts.get("stale") or counts.get("missing"))
        else "failed")
    rows = ["| status | system | target | file:line | site | holds | true hash |",
            "|---|---|---|---|---|---|---|"]
    for site in sorted(report["sites"], key=lambda s: (s["status"] == "ok", s["file"], s["line"])):
        rows.append("| " + " | ".join(_cell(v) for v in (
            site["status"], site["system"] or report.get("system"), site["target"],
            f"{site['file']}:{site['line']}", site["site"], site["literal"], site["truth"])) + " |")
    stats = report.get("stats", {})
    counted = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    _summary(f"### fodhash check: {verdict}\n\n{counted or 'no site'}; "
             f"{stats.get('evaluations', 0)} evaluation(s), {stats.get('builds', 0)} FOD "
             f"build(s).\n\n" + "\n".join(rows) + "\n\n"
             + ("Run `fodhash update` with the targets above to fix them, or use this action "
                "with `mode: update` on pull requests.\n" if bad else ""))
    _output(verdict=verdict)
    return 0


def comment(number: str, body_file: str) -> int:
    """Post the comment; a token that may not comment (Dependabot's, a fork's) is not an
    error: the same text is in the job summary."""
    body = open(body_file, encoding="utf-8").read()  # noqa: SIM115
    url = (f"{os.environ['GITHUB_API_URL']}/repos/{os.environ['GITHUB_REPOSITORY']}"
           f"/issues/{number}/comments")
    request = urllib.request.Request(  # noqa: S310 (the runner's API URL)
        url, data=json.dumps({"body": body}).encode(), method="POST",
        headers={"Authorization": f"token {os.environ.get('TOKEN', '')}",
                 "Accept": "application/json", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310
            pass
    except (urllib.error.URLError, OSError) as error:
        print(f"::warning::fodhash: could not comment on the pull request ({error}); "
              "the command is in the job summary")
    return 0


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    sys.exit({"event": event, "check": check, "comment": comment}[command](*args))
