"""One run's page of the leaderboard site: config, provenance, per-epoch curves and the command.

The curves are inline SVG drawn from the result's ``history`` (training loss and validation
text-to-audio mAP@10 per epoch), so the page needs no image files and stays byte-identical for the
same result. The reproducing command is rebuilt from the recorded config, not copied from
``provenance.argv``, which may describe a whole grid.
"""

from __future__ import annotations

import html
import json
import shlex
from dataclasses import fields
from typing import Any

from bench.evaluation import metric_table

_SKIP_TRAIN = {"device", "world_size", "preset"}  # recorded for provenance; not flags of one run


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, content: str, *, script: str | None = None, root: str = "") -> str:
    """A complete HTML document around ``content``; ``root`` is the relative path to the site's top."""
    js = f'<script src="{root}{script}"></script>' if script else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><link rel=\"stylesheet\" href=\"{root}style.css\"></head>"
            f"<body>{content}{js}</body></html>\n")


def run_kind(result: dict[str, Any]) -> str:
    """``trained``, ``zero-shot``, ``fusion`` or ``scored``: the table's kind filter."""
    kind = result.get("kind")
    if kind == "fusion":
        return "fusion"
    if kind == "score":
        return "scored"
    if kind == "eval" and (result.get("eval") or {}).get("zero_shot"):
        return "zero-shot"
    return "trained"


def _flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def reproduce_command(result: dict[str, Any]) -> str:
    """The ``bench`` command that recomputes this result at its recorded commit."""
    if result.get("kind") == "score":
        score = result.get("score") or {}
        argv = ["bench", "score", str(score.get("file", "FILE")), "--dataset", result["dataset"]["name"],
                "--format", str(score.get("format", "trec"))]
        name = result["dataset"]["name"]
        for key, value in sorted((result["dataset"].get("set") or {}).items()):
            argv += ["--set", f"{name}.{key}={_flag_value(value)}"]
    elif result.get("kind") == "fusion":
        fusion = result.get("fusion") or {}
        argv = ["bench", "fuse", *fusion.get("runs", []), "--method", str(fusion.get("method", "combsum"))]
        if fusion.get("weights") and len(set(fusion["weights"])) > 1:
            argv += ["--weights", _flag_value(fusion["weights"])]
        if fusion.get("k") is not None:
            argv += ["--k", str(fusion["k"])]
    else:
        from bench.core.config import TrainSettings

        argv = ["bench", "run", "--dataset", result["dataset"]["name"], "--encoder", result["audio_encoder"]["name"],
                "--text-encoder", result["text_encoder"]["name"], "--loss", result["loss"]["name"],
                "--seed", str(result.get("seed", 0))]
        stage = result.get("stage") or {}
        if stage.get("teachers"):
            argv += ["--teachers", ",".join(stage["teachers"])]
        for block in ("dataset", "audio_encoder", "text_encoder", "loss"):
            name = result[block]["name"]
            for key, value in sorted((result[block].get("set") or {}).items()):
                argv += ["--set", f"{name}.{key}={_flag_value(value)}"]
        defaults = {f.name: f.default for f in fields(TrainSettings)}
        training = result.get("training") or {}
        for key in sorted(training):
            if key in defaults and key not in _SKIP_TRAIN and training[key] != defaults[key]:
                argv += ["--set", f"train.{key}={_flag_value(training[key])}"]
        argv += ["--device", str(training.get("device") or (result.get("provenance") or {}).get("device", "auto"))]
    command = shlex.join(argv)
    commit = (result.get("provenance") or {}).get("git_commit")
    return f"git checkout {commit}\n{command}" if commit else command


def _polyline(points: list[tuple[float, float]], width: int, height: int, pad: int) -> tuple[str, float, float]:
    ys = [y for _, y in points]
    low, high = min(ys), max(ys)
    span = (high - low) or 1.0
    n = max(len(points) - 1, 1)
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    coords = " ".join(f"{pad + inner_w * i / n:.1f},{height - pad - inner_h * (y - low) / span:.1f}"
                      for i, (_, y) in enumerate(points))
    return coords, low, high


def curve_svg(title: str, points: list[tuple[float, float]], color: str) -> str:
    """A small line chart of ``(epoch, value)`` points as inline SVG, axes labelled with the range."""
    width, height, pad = 320, 140, 24
    if not points:
        return ""
    coords, low, high = _polyline(points, width, height, pad)
    first, last = points[0][0], points[-1][0]
    dots = "".join(f'<circle cx="{c.split(",")[0]}" cy="{c.split(",")[1]}" r="2.5" fill="{color}"/>'
                   for c in coords.split())
    return (f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="{_e(title)}"><rect x="{pad}" y="{pad}" width="{width - 2 * pad}" height="{height - 2 * pad}" '
            f'fill="none" stroke="#d8dee4"/><polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>'
            f'{dots}<text x="{pad}" y="{pad - 6}">{_e(f"{high:.4g}")}</text>'
            f'<text x="{pad}" y="{height - 6}">{_e(f"{low:.4g}")} · epoch {_e(f"{first:g}")}–{_e(f"{last:g}")}</text>'
            f'</svg><figcaption>{_e(title)}</figcaption></figure>')


def _curves(result: dict[str, Any]) -> str:
    history = [h for h in (result.get("history") or []) if isinstance(h, dict)]
    direction, key = metric_table.PRIMARY
    loss = [(float(h["epoch"]), float(h["train_loss"])) for h in history
            if isinstance(h.get("epoch"), (int, float)) and isinstance(h.get("train_loss"), (int, float))]
    val = [(float(h["epoch"]), 100.0 * float(((h.get("val") or {}).get(direction) or {})[key])) for h in history
           if isinstance(h.get("epoch"), (int, float))
           and isinstance(((h.get("val") or {}).get(direction) or {}).get(key), (int, float))]
    charts = curve_svg("training loss per epoch", loss, "#cf222e") + curve_svg(
        f"validation {direction} {key} (%) per epoch", val, "#0b5cad")
    return charts or "<p>No per-epoch history in this result.</p>"


def _definition_list(items: list[tuple[str, Any]]) -> str:
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items) + "</dl>"


def _metrics_table(result: dict[str, Any]) -> str:
    head = "<tr><th>metric</th><th>test</th><th>chance</th></tr>"
    rows = []
    for direction in metric_table.DIRECTIONS:
        for metric in metric_table.metrics(direction):
            value = ((result.get("metrics") or {}).get(direction) or {}).get(metric.key)
            chance = ((result.get("chance") or {}).get(direction) or {}).get(metric.key)
            if value is None:
                continue
            chance_text = "" if chance is None else _e(metric.format(chance))
            rows.append(f'<tr><td>{_e(direction)} {_e(metric.key)}</td><td class="num">{_e(metric.format(value))}</td>'
                        f'<td class="num">{chance_text}</td></tr>')
    return f"<table>{head}{''.join(rows)}</table>"


def render_run_page(result: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """The page of one result; ``results`` lets it link the runs it was built from (teachers, fused runs)."""
    from bench.leaderboard.tables import benchmark_title, component_label, loss_label

    known = {r["run_id"] for r in results}
    stage = result.get("stage") or {}
    sources = list((result.get("fusion") or {}).get("runs") or []) + list(stage.get("teachers") or [])
    linked = ", ".join(f'<a href="{_e(s)}.html">{_e(s)}</a>' if s in known else _e(s) for s in sources)
    config = [("benchmark", benchmark_title(result)), ("kind", run_kind(result)),
              ("audio encoder", component_label(result["audio_encoder"])),
              ("text encoder", component_label(result["text_encoder"])), ("loss", loss_label(result)),
              ("seed", result.get("seed")), ("created", result.get("created", ""))]
    provenance = sorted((k, json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
                        for k, v in (result.get("provenance") or {}).items())
    full = {k: v for k, v in result.items() if k != "history"}
    content = (f'<p><a href="../index.html">all benchmarks</a></p><h1>{_e(result["run_id"])}</h1>'
               f"{_definition_list(config)}"
               + (f"<p>Built from: {linked}</p>" if linked else "")
               + f"<h2>Test metrics (%)</h2>{_metrics_table(result)}"
               f"<h2>Per-epoch curves</h2>{_curves(result)}"
               f"<h2>Reproduce</h2><pre><code>{_e(reproduce_command(result))}</code></pre>"
               f"<h2>Provenance</h2>{_definition_list(provenance)}"
               f"<h2>Full config</h2><details><summary>the result file without its history</summary>"
               f"<pre>{_e(json.dumps(full, indent=1, sort_keys=True))}</pre></details>")
    return page(result["run_id"], content, root="../")
