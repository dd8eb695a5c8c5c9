""".github/workflows/leaderboard.yml, held to bench since this machine cannot run GitHub Actions.

It parses as YAML with the triggers and jobs the README promises; every ``bench`` line in its
steps is a command and options bench's own parser accepts; and (slow) the same commands pass here
on the committed results, with the site written to a temporary directory instead of ``_site``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")

from bench.cli.main import _parser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "leaderboard.yml"


def load() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def bench_lines() -> list[str]:
    """Every line of a ``run:`` step that calls bench, in order."""
    lines = []
    for job in load()["jobs"].values():
        for step in job.get("steps", []):
            for line in str(step.get("run", "")).splitlines():
                if line.strip().startswith("bench "):
                    lines.append(line.strip())
    return lines


def test_workflow_parses_and_runs_on_result_changes_and_publishes_from_main():
    data = load()
    for event in ("push", "pull_request"):
        assert "leaderboard/results/**" in data["on"][event]["paths"]
    jobs = data["jobs"]
    assert set(jobs) == {"check", "publish"}
    assert jobs["publish"]["needs"] == "check"
    assert "refs/heads/main" in jobs["publish"]["if"] and "push" in jobs["publish"]["if"]
    assert jobs["publish"]["permissions"] == {"pages": "write", "id-token": "write"}
    uses = [step.get("uses", "") for job in jobs.values() for step in job["steps"]]
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    assert any(u.startswith("actions/deploy-pages@") for u in uses)
    install = next(s["run"] for s in jobs["check"]["steps"] if "Install" in s.get("name", ""))
    assert "whl/cpu" in install and "pip install -e \".[docs]\"" in install  # CPU torch, then bench with its docs extra


def test_every_bench_line_is_a_command_bench_accepts():
    lines = bench_lines()
    assert [shlex.split(line)[1] for line in lines] == ["verify", "leaderboard", "leaderboard"]
    parser = _parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # what `bench --help` lists
    for line in lines:
        argv = shlex.split(line)[1:]
        assert argv[0] in commands, f"{line!r}: bench has no command {argv[0]!r} (commands: {sorted(commands)})"
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{line!r}: bench rejects these options")


@pytest.mark.slow
def test_the_workflows_bench_commands_pass_here(tmp_path):
    bench = Path(sys.executable).with_name("bench")
    env = {**os.environ, "BENCH_CACHE": str(tmp_path / "cache")}
    for line in bench_lines():
        argv = [str(bench), *(a.replace("_site", str(tmp_path / "site")) for a in shlex.split(line)[1:])]
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{line!r} failed here: {done.stderr.strip()[-600:]}"
    assert (tmp_path / "site" / "leaderboard" / "index.html").is_file()
    assert list((tmp_path / "site" / "leaderboard" / "plots").glob("*.png"))


def test_the_site_holds_the_docs_at_the_root_and_the_leaderboard_below():
    build = next(s["run"] for s in load()["jobs"]["check"]["steps"] if "Build the site" in s.get("name", ""))
    assert "mkdocs build --strict --site-dir _site" in build
    assert "--html _site/leaderboard" in build
    install = next(s["run"] for s in load()["jobs"]["check"]["steps"] if "Install" in s.get("name", ""))
    assert '".[docs]"' in install  # mkdocs, the theme and mkdocstrings come from the docs extra
