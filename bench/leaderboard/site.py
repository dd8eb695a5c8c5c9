"""``bench leaderboard --html DIR``: the leaderboard as a self-contained static site.

``DIR/index.html`` lists the benchmarks; ``DIR/<benchmark>.html`` holds one benchmark's table,
which sorts by any column, filters by audio encoder, text encoder, loss and kind (trained /
zero-shot / fusion) and switches between seeds aggregated and individual runs;
``DIR/runs/<run_id>.html`` shows one run (:mod:`bench.leaderboard.run_page`). Stylesheet and script
are files in DIR (:mod:`bench.leaderboard.site_assets`): no server, no CDN.

The rows are the markdown leaderboard's (:func:`bench.leaderboard.tables.aggregate`), so both always
agree. The same inputs give byte-identical files (nothing depends on the clock or on dict order),
so :func:`check_site` can hold a committed site to its results, like ``bench leaderboard --check``.
A result file that cannot be read or breaks the build is named in a warning and skipped.
"""

from __future__ import annotations

import html
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.core.atomic import atomic_write_text
from bench.core.safe_paths import inside
from bench.errors import BenchError
from bench.evaluation import metric_table
from bench.leaderboard import significance as leaderboard_stats
from bench.leaderboard import site_assets
from bench.leaderboard import tables as leaderboard
from bench.leaderboard.rows import duration, slug
from bench.leaderboard.run_page import page, render_run_page, run_kind
from bench.results.files import read_result_in, result_paths

MARKER = ".bench-site"
"""A file in DIR saying bench owns it: only then are stale pages of removed runs deleted."""
FILTERS = (("audio", "Audio encoder"), ("text", "Text encoder"), ("loss", "Loss"), ("kind", "Kind"))


def load_results(results_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Path], list[str]]:
    """The readable results, their files by run id, and one warning per file that is skipped (unusable)."""
    results, sources, warnings = [], {}, []
    for path in result_paths(results_dir):
        try:
            result = read_result_in(path, results_dir)
            leaderboard.aggregate([result])  # a result the tables cannot use must not break the site
        except BenchError as exc:
            warnings.append(f"skips {' '.join(str(exc).split())}")
            continue
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            warnings.append(f"skips {path}: cannot be shown ({type(exc).__name__}: {exc})")
            continue
        results.append(result)
        sources[result["run_id"]] = path
    return results, sources, warnings


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _metric_columns() -> list[tuple[str, str, Any]]:
    return [(metric_table.column_name(d, m), d, m) for d, m in metric_table.leaderboard_columns()]


def _other_columns() -> list[str]:
    metric_names = {name for name, _, _ in _metric_columns()}
    return [c for c in leaderboard.columns() if c not in metric_names and c not in leaderboard.LABEL_COLUMNS]


def _metric_cell(metric: Any, values: list[float], ci: tuple[float, float] | None, best: bool) -> str:
    """A number cell: mean ± std of the seeds, or the mean with its CI below (as the markdown shows it)."""
    if not values:
        return '<td class="num" data-v=""></td>'
    mean = statistics.fmean(values)
    text = _e(metric.cell(values) if ci is None else metric.format(mean))
    if best:
        text = f"<strong>{text}</strong>"
    if ci is not None:
        text += f'<span class="ci">[{_e(metric.format(ci[0]))}, {_e(metric.format(ci[1]))}]</span>'
    return f'<td class="num" data-v="{mean!r}">{text}</td>'


def _row_html(row: dict[str, Any], view: str, cis: dict[str, tuple[float, float]], best: bool) -> str:
    runs = row["runs"]
    kind = run_kind(runs[0])
    attrs = {"audio": row["Audio encoder"], "text": row["Text encoder"], "loss": row["Loss"], "kind": kind}
    data = "".join(f' data-{k}="{_e(v)}"' for k, v in attrs.items())
    links = " ".join(f'<a href="runs/{_e(r["run_id"])}.html">{"run" if len(runs) == 1 else _e(r.get("seed"))}</a>'
                     for r in runs)
    cells = [f'<td data-v="{_e(row[c])}">{_e(row[c])}</td>' for c in leaderboard.LABEL_COLUMNS]
    cells.append(f'<td data-v="{_e(kind)}">{_e(kind)}</td>')
    primary = metric_table.column_name(metric_table.PRIMARY[0], metric_table.get(metric_table.PRIMARY[1]))
    for column, _direction, metric in _metric_columns():
        cells.append(_metric_cell(metric, row["values"][column], cis.get(column), best and column == primary))
    for column in _other_columns():
        value = row.get(column, "")
        if view == "run" and column == "Seeds":
            value = f"seed {runs[0].get('seed')}"
        cells.append(f'<td data-v="{_e(value)}">{_e(value)}</td>')
    cells.append(f"<td>{links}</td>")
    hidden = "" if view == "agg" else " hidden"
    return f'<tr class="row" data-view="{view}"{data}{hidden}>{"".join(cells)}</tr>'


def _single_row(row: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """The aggregated row narrowed to one of its seed runs."""
    values = {}
    for column, direction, metric in _metric_columns():
        value = ((run.get("metrics") or {}).get(direction) or {}).get(metric.key)
        values[column] = [] if value is None else [float(value)]
    seconds = float((run.get("timings") or {}).get("train_s", 0.0) or 0.0)
    return {**row, "values": values, "Seeds": "1", "Train time": duration(seconds), "runs": [run]}


def _chance_row(chance: dict[str, Any]) -> str:
    cells = [f"<td>{_e(leaderboard.CHANCE_LABEL.strip('*'))}</td>", "<td></td>", "<td></td>", "<td></td>"]
    for _column, direction, metric in _metric_columns():
        value = (chance.get(direction) or {}).get(metric.key)
        cells.append(f'<td class="num">{"" if value is None else _e(metric.format(value))}</td>')
    cells += ["<td></td>"] * (len(_other_columns()) + 1)
    return f'<tr class="chance">{"".join(cells)}</tr>'


def _select(table_id: str, key: str, label: str, options: list[str]) -> str:
    choices = "".join(f'<option value="{_e(o)}">{_e(o)}</option>' for o in options)
    return (f'<label>{_e(label)} <select id="{table_id}-{key}" data-filter="{key}">'
            f'<option value="">all</option>{choices}</select></label>')


def benchmark_page(title: str, rows: list[dict[str, Any]], chance: dict[str, Any], sources: dict[str, Path],
                   ci_notes: list[str] | None = None) -> str:
    """One benchmark's table: aggregated rows, each followed by its (hidden) seed runs, and chance last.

    CIs and the rows not significantly worse than the best come from the per-query sidecars, through
    the markdown leaderboard's own :func:`bench.leaderboard.significance.annotate`.
    """
    table_id = "board"
    body, seen = [], {k: set() for k, _ in FILTERS}
    found = leaderboard_stats.annotate(rows, sources)
    if ci_notes is not None:
        ci_notes.extend(found.notes)
    for index, row in enumerate(rows):
        runs = row["runs"]
        best = found.not_worse is not None and index in found.not_worse
        body.append(_row_html(row, "agg", found.cis.get(index, {}), best))
        for run in runs:
            single = _single_row(row, run)
            # One seed: the row's own CI; a seed of several: that run's bootstrap CI alone.
            own = (found.cis.get(index, {}) if len(runs) == 1
                   else leaderboard_stats.annotate([single], sources).cis.get(0, {}))
            body.append(_row_html(single, "run", own, False))
        seen["audio"].add(row["Audio encoder"])
        seen["text"].add(row["Text encoder"])
        seen["loss"].add(row["Loss"])
        seen["kind"].update(run_kind(r) for r in runs)
    body.append(_chance_row(chance))
    headers = [*leaderboard.LABEL_COLUMNS, "Kind", *(c for c, _, _ in _metric_columns()), *_other_columns()]
    head = "".join(f'<th class="sortable" tabindex="0" scope="col">{_e(h)}</th>' for h in headers)
    controls = "".join(_select(table_id, k, label, sorted(seen[k])) for k, label in FILTERS)
    controls += ('<label><input type="radio" name="view" value="agg" checked> seeds aggregated</label>'
                 '<label><input type="radio" name="view" value="run"> individual runs</label>'
                 f'<span id="{table_id}-shown"></span>')
    note = ("Metrics are percentages on the test split (docs/metrics.md in the repository); a cell with "
            "several seeds shows mean ± sample standard deviation, or, where the results have per-query "
            "sidecars, the mean with its 95% confidence interval below. Click a column header to sort.")
    notes = [note] + ([leaderboard_stats.significance_caption(found.tested, len(rows)).replace("**", "")]
                      if found.not_worse is not None else []) + [f"No confidence interval: {n}" for n in found.notes]
    paragraphs = "".join(f'<p class="note">{_e(n)}</p>' for n in notes)
    content = (f'<p><a href="index.html">all benchmarks</a></p><h1>{_e(title)}</h1>{paragraphs}'
               f'<div class="controls" id="{table_id}-controls">{controls}</div>'
               f'<table class="board" id="{table_id}"><thead><tr>{head}<th>Runs</th></tr></thead>'
               f'<tbody>{"".join(body)}</tbody></table>')
    return page(title, content, script="app.js")


def index_page(benchmarks: list[tuple[str, str, list[dict[str, Any]]]], warnings: list[str]) -> str:
    direction, key = metric_table.PRIMARY
    metric = metric_table.get(key)
    items = []
    for name, title, rows in benchmarks:
        best = next((r for r in rows if r.get("sort") is not None and r.get("sort") == r.get("sort")), None)
        lead = (f" — best {_e(metric_table.column_name(direction, metric))}: {_e(metric.format(best['sort']))} "
                f"({_e(best['Audio encoder'])} / {_e(best['Text encoder'])} / {_e(best['Loss'])})") if best else ""
        items.append(f'<li><a href="{_e(name)}.html">{_e(title)}</a>: {len(rows)} rows{lead}</li>')
    skipped = "".join(f'<li class="warning">{_e(w)}</li>' for w in warnings)
    content = ("<h1>Leaderboard</h1><p class=\"note\">Generated by <code>bench leaderboard --html</code> from "
               "the result files; do not edit by hand.</p>"
               f"<ul>{''.join(items) or '<li>No results yet: run <code>bench run</code>.</li>'}</ul>"
               + (f"<h2>Skipped result files</h2><ul>{skipped}</ul>" if skipped else ""))
    return page("Leaderboard", content)


def build_site(results_dir: Path, ci_notes: list[str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Every file of the site as ``{relative path: text}``, and the warnings for skipped result files;
    ``ci_notes`` collects the lines of rows whose per-query sidecars could not be used."""
    results, sources, warnings = load_results(results_dir)
    files = {"style.css": site_assets.CSS, "app.js": site_assets.JS, MARKER: "written by bench leaderboard --html\n"}
    listed = []
    for key, (title, rows, chance) in leaderboard.aggregate(results).items():
        name = slug(key)
        files[f"{name}.html"] = benchmark_page(title, rows, chance, sources, ci_notes)
        listed.append((name, title, rows))
    for result in results:
        files[f"runs/{result['run_id']}.html"] = render_run_page(result, results)
    files["index.html"] = index_page(listed, warnings)
    return files, warnings


def _stale(directory: Path, files: dict[str, str]) -> tuple[list[str], list[Path]]:
    """Files that differ from what the results give, and pages in DIR that no result gives any more."""
    differ = [name for name, text in sorted(files.items())
              if not (directory / name).is_file() or (directory / name).read_text(encoding="utf-8") != text]
    extra = []
    if (directory / MARKER).is_file():
        for path in sorted([*directory.glob("*.html"), *directory.glob("runs/*.html")]):
            if path.relative_to(directory).as_posix() not in files:
                extra.append(path)
    return differ, extra


def write_site(results_dir: Path, directory: Path,
               ci_notes: list[str] | None = None) -> tuple[list[Path], list[str]]:
    """Write the site into ``directory`` (atomically, file by file); returns written files and warnings."""
    files, warnings = build_site(results_dir, ci_notes)
    directory = Path(directory)
    for name in files:  # names come from validated run ids; checked again where they land
        inside(directory, name, what="site page")
    differ, extra = _stale(directory, files)
    for name in differ:
        atomic_write_text(inside(directory, name, what="site page"), files[name])
    for path in extra:
        path.unlink()
    return [directory / name for name in differ], warnings


def check_site(results_dir: Path, directory: Path, ci_notes: list[str] | None = None) -> list[str]:
    """Raise :class:`BenchError` naming the first stale file; returns the warnings for skipped results."""
    files, warnings = build_site(results_dir, ci_notes)
    differ, extra = _stale(Path(directory), files)
    if differ or extra:
        first = Path(directory) / differ[0] if differ else extra[0]
        raise BenchError(f"{first} is stale ({len(differ)} files differ, {len(extra)} left over from removed runs); "
                         f"run `bench leaderboard --html {directory}`")
    return warnings


def html_command(results_dir: Path, directory: Path, *, check: bool) -> None:
    """What ``bench leaderboard --html DIR [--check]`` does: warnings on stderr, a summary on stdout."""
    notes: list[str] = []
    if check:
        warnings = check_site(results_dir, directory, notes)
        print(f"{directory} is current")
    else:
        written, warnings = write_site(results_dir, directory, notes)
        print(f"wrote {len(written)} changed file(s) of the site in {directory}")
    for warning in warnings:
        print(f"warning: the site {warning}", file=sys.stderr)
    for note in notes:
        print(f"warning: the site shows no confidence interval: {note}", file=sys.stderr)
    for line in leaderboard.local_path_problems(load_results(results_dir)[0]):
        print(f"warning: the site shows {line}", file=sys.stderr)
