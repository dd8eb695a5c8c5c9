"""Hostile result files (tests/hostile_results.py) through every command that reads results.

Each hostile file is named by exactly one line of each command's output (its refusal, or the
refusal of its unusable part), no command raises or prints a traceback, nothing is written outside
the directory or file a command was given, and the good results are still rendered. The count is
printed (``-s`` shows it) for the record.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from hostile_results import MARKUP, make_corpus

from bench.cli.main import main

FAST = ["--permutations", "1000", "--bootstrap", "1000"]


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _lines_naming(text: str, stem: str) -> list[str]:
    # The closing "error: N result problem(s) listed above, the first: ..." repeats one of them by design.
    return [line for line in text.splitlines()
            if stem in line and " problem(s) listed above, the first" not in line]


def test_hostile_results_are_refused_one_line_each_and_nothing_escapes(tmp_path, make_result, capsys):
    base = tmp_path / "corpus"
    corpus = make_corpus(base, make_result)
    results, runs, site, out = base / "results", base / "runs", base / "site", base / "board.md"
    before = _snapshot(tmp_path)
    common = ["--results-dir", str(results)]
    commands = {
        "leaderboard": ["leaderboard", *common, "--output", str(out)],
        "leaderboard --html": ["leaderboard", *common, "--html", str(site)],
        "leaderboard --check": ["leaderboard", *common, "--output", str(out), "--check"],
        "verify": ["verify", str(results), "--runs-dir", str(runs)],
    }
    outputs: dict[str, str] = {}
    codes: dict[str, int] = {}
    for name, argv in commands.items():
        codes[name] = main(argv)
        captured = capsys.readouterr()
        outputs[name] = captured.out + captured.err
    per_file: dict[str, dict[str, str]] = {}
    for stem in corpus["hostile"]:
        per_file[stem] = {}
        for name, argv in (("compare", ["compare", stem, "good-a", *common, "--runs-dir", str(runs), *FAST]),
                           ("inspect", ["inspect", stem, *common, "--runs-dir", str(runs)])):
            code = main(argv)
            captured = capsys.readouterr()
            per_file[stem][name] = captured.out + captured.err
            assert code != 0, (stem, name, per_file[stem][name][-500:])

    assert codes["leaderboard"] == 0 and codes["leaderboard --html"] == 0
    assert codes["leaderboard --check"] == 1 and codes["verify"] == 1
    everything = "\n".join([*outputs.values(), *(t for d in per_file.values() for t in d.values())])
    assert "Traceback" not in everything
    one_line = []
    for stem in corpus["hostile"]:
        counts = {name: len(_lines_naming(text, stem)) for name, text in outputs.items()}
        counts.update({name: len(_lines_naming(text, stem)) for name, text in per_file[stem].items()})
        assert all(n == 1 for n in counts.values()), (stem, counts)
        one_line.append(stem)

    # Nothing outside the targets: the site directory and the markdown file.
    created = _snapshot(tmp_path) - before
    targets = ("corpus/site", "corpus/board.md")
    outside = sorted(p for p in created if not (p in targets or p.startswith("corpus/site/")))
    assert outside == []
    assert not list(tmp_path.rglob("escaped-x*"))
    assert {p.name for p in (site / "runs").iterdir()} == {f"{g}.html" for g in corpus["good"]} | {
        "h-pickle.html", "h-sidecar-link.html", "h-abs-artifact.html"}  # valid files whose parts are refused

    # The good results are still rendered, markup in their options escaped.
    markdown = out.read_text(encoding="utf-8")
    rows = [line for line in markdown.splitlines() if line.startswith("| cnn ")]
    assert len(rows) == 3 + 3  # good-a, good-b, good-markup, and the three valid hostile ones
    header = next(line for line in markdown.splitlines() if line.startswith("| Audio encoder"))
    columns = len(re.findall(r"(?<!\\)\|", header))
    assert all(len(re.findall(r"(?<!\\)\|", row)) == columns for row in rows)
    assert "<img" not in markdown and "<b>" not in markdown
    assert "ntxent (negatives=&lt;b&gt;x&lt;/b&gt;\\|md\\| \\`c\\` \\*\\*b\\*\\*)" in markdown
    board = next(site.glob("synthetic-*.html")).read_text(encoding="utf-8")
    assert "<img" not in board and "<b>x" not in board and "negatives=&lt;b&gt;x&lt;/b&gt;|md|" in board
    assert MARKUP not in (site / "runs" / "good-markup.html").read_text(encoding="utf-8")

    n = len(corpus["hostile"])
    parts_refused = {p.stem for p in (site / "runs").iterdir()} - set(corpus["good"])
    print(f"\nhostile corpus: {n} files, {len(one_line)} named by exactly one line in each of {len(commands) + 2} "
          f"commands ({n - len(parts_refused)} refused whole, {len(parts_refused)} shown with their sidecar or "
          f"artifact refused), 0 tracebacks, {len(outside)} files written outside the target, "
          f"{len(corpus['good'])} good results rendered")
    assert n >= 20 and len(one_line) == n
    assert os.listdir(results)  # untouched: no command removed or rewrote a result
