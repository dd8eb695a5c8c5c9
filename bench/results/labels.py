"""Readable names for compared systems: label each system by what differs between them.

Two results from one long directory share any prefix of their paths, so a name cut from the
path cannot tell them apart. Each system is described by its dataset and protocol, its components,
their options set by the user, its distillation stage and number of teachers (M), its pipeline
stage, the training settings, the kind of result and its seeds; a label lists only the entries
whose values differ between the systems (``loss=triplet``, ``seed=1``, ``train.epochs=4``). Where
nothing differs, the result files' names (run ids) are used; identical systems get ``#2``, ``#3``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Recorded for provenance, not a property of the system being compared.
_VOLATILE_TRAINING = {"device", "world_size", "eval_chunk", "preset", "num_workers", "embedding_cache",
                      "audio_cache", "keep", "eval_batch_size"}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def describe(result: dict[str, Any]) -> dict[str, str]:
    """The comparable entries of one result, as ``{key: value text}``, in a stable order."""
    out: dict[str, str] = {"kind": str(result.get("kind", "train"))}
    score = result.get("score") or {}
    if out["kind"] == "score":  # outside outputs: bench knows their name, format and file, nothing more
        return {**out, "system": str((result.get("audio_encoder") or {}).get("name", "?")),
                "format": str(score.get("format", "?")), "file": str(score.get("file", "?"))}
    for key, block in (("audio", "audio_encoder"), ("text", "text_encoder"), ("loss", "loss")):
        component = result.get(block) or {}
        out[key] = str(component.get("name", "?"))
        for option, value in sorted((component.get("set") or {}).items()):
            out[f"{out[key]}.{option}"] = _text(value)
    out["dataset"] = str((result.get("dataset") or {}).get("name", "?"))
    if result.get("protocol"):
        out["protocol"] = str(result["protocol"])
    stage = result.get("stage") or {}
    if stage.get("stage", 1) != 1:  # distillation's stage 2: its teachers' count tells M=3 from M=1
        out["stage"] = str(stage["stage"])
    if stage.get("M"):
        out["M"] = str(stage["M"])
    pipeline = result.get("pipeline") or {}
    if pipeline:
        out["pipeline"] = f"{pipeline.get('name')}:{pipeline.get('stage_name')}"
    for key, value in sorted((result.get("training") or {}).items()):
        if key not in _VOLATILE_TRAINING and not isinstance(value, (dict, list)):
            out[f"train.{key}"] = _text(value)
    return out


def system_labels(groups: list[list[tuple[dict[str, Any], Path]]]) -> list[str]:
    """One label per system (a list of ``(result, path)`` seed runs), unique among them."""
    described = []
    for runs in groups:
        entries = describe(runs[0][0])
        entries["seed"] = ",".join(str(r.get("seed")) for r, _ in runs)
        described.append(entries)
    keys = list(dict.fromkeys(k for d in described for k in d))
    differing = [k for k in keys if len({d.get(k, "") for d in described}) > 1]
    labels = [", ".join(f"{k}={d[k]}" for k in differing if k in d) for d in described]
    if len(set(labels)) < len(labels) or not all(labels):
        names = [",".join(path.stem for _, path in runs) for runs in groups]
        labels = [f"{label} ({name})" if label else name for label, name in zip(labels, names)]
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return unique
