"""``bench inspect RUN``: the worst queries of a run, and its per-query difference against another run.

Works from a run's stored test embeddings (``test_embeddings.npz``): the worst caption queries
(highest rank of their recording; ties by caption order) with the rank and the top-k recordings
retrieved, with their scores. Caption text is shown when the npz stores ``captions`` or the
caller passes them; otherwise the caption key ``"<audio_id>#<k>"`` stands in.
``--vs OTHER`` lists the captions whose rank improved and worsened most against another run on
the same split (aligned by key).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import DataError
from bench.evaluation.per_query import (
    Outcomes,
    align,
    load_for_result,
    outcomes_from_embeddings,
    outcomes_from_npz,
    read_embeddings,
)
from bench.results.files import read_result, read_result_in
from bench.results.schema import is_id


def _captions(path: Path, n_captions: int, captions: Sequence[str] | None) -> list[str] | None:
    if captions is None:
        with np.load(path, allow_pickle=False) as data:
            captions = data["captions"].astype(str).tolist() if "captions" in data.files else None
    if captions is not None and len(captions) != n_captions:
        raise DataError(f"{len(captions)} caption texts for {n_captions} captions in {path}")
    return list(captions) if captions is not None else None


def worst_queries(
    embeddings: str | Path, n: int = 10, k: int = 5, captions: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The ``n`` caption queries ranking their recording lowest, each with its top-``k`` recordings."""
    path = Path(embeddings)
    e = read_embeddings(path)
    o = outcomes_from_embeddings(e["audio"], e["text"], e["audio_of_caption"], e["audio_ids"], e["fingerprint"])
    texts = _captions(path, o.n_captions, captions)
    keys = o.caption_keys()
    order = np.lexsort((np.arange(o.n_captions), -o.t2a_rank))[:n]  # rank descending, then caption order
    audio = torch.as_tensor(e["audio"], dtype=torch.float32)
    text = torch.as_tensor(e["text"][order], dtype=torch.float32)
    scores = text @ audio.T  # fp32, as the metrics score them
    top = torch.topk(scores, min(k, audio.shape[0]), dim=1)
    out = []
    for row, i in enumerate(order.tolist()):
        out.append({
            "caption_index": i,
            "caption_key": str(keys[i]),
            "caption": texts[i] if texts is not None else None,
            "audio_id": str(o.audio_ids[o.audio_of_caption[i]]),
            "rank": int(o.t2a_rank[i]),
            "top": [(str(o.audio_ids[j]), float(s)) for j, s in zip(top.indices[row].tolist(),
                                                                    top.values[row].tolist())],
        })
    return out


def rank_differences(this: Outcomes, other: Outcomes, n: int = 10) -> dict[str, list[dict[str, Any]]]:
    """Captions whose t2a rank improved / worsened most in ``this`` against ``other`` (aligned by key)."""
    this, other = align(this, other, ("this run", "the other run"))
    keys = this.caption_keys()
    gain = other.t2a_rank - this.t2a_rank  # > 0: this run ranks the recording higher
    idx = np.arange(this.n_captions)

    def rows(order: np.ndarray) -> list[dict[str, Any]]:
        return [{"caption_index": int(i), "caption_key": str(keys[i]), "rank": int(this.t2a_rank[i]),
                 "other_rank": int(other.t2a_rank[i]), "gain": int(gain[i])} for i in order if gain[i] != 0]

    return {"improved": rows(np.lexsort((idx, -gain))[:n]), "worsened": rows(np.lexsort((idx, gain))[:n])}


def _embeddings_of(spec: str, results_dir: Path, runs_dir: Path | None = None) -> Path | Outcomes:
    """A run's embeddings from an npz path, a result .json, or a run id in ``results_dir``; for a result
    without embeddings here (a scored TREC or DCASE file), its per-query sidecar's outcomes."""
    path = Path(spec)
    if path.suffix == ".npz":
        return path
    by_id = path.suffix != ".json"
    result_path = results_dir / f"{spec}.json" if by_id else path
    if (by_id and not is_id(spec)) or not result_path.is_file():
        raise DataError(f"{spec[:80]!r}: no such result file, run id in {results_dir} or embeddings .npz")
    from bench.results.verify import embeddings_path

    result = read_result_in(result_path, results_dir) if by_id else read_result(result_path)
    found = embeddings_path(result, result_path, runs_dir)
    if found is None:
        if isinstance(result.get("per_query"), dict):
            return load_for_result(result, result_path)
        raise DataError(f"{result_path}: its test embeddings are not here; pass the test_embeddings.npz itself")
    return found


def worst_from_outcomes(o: Outcomes, n: int = 10) -> list[dict[str, Any]]:
    """:func:`worst_queries` from per-query ranks alone (no scores: nothing retrieved is shown)."""
    keys = o.caption_keys()
    order = np.lexsort((np.arange(o.n_captions), -o.t2a_rank))[:n]
    return [{"caption_index": int(i), "caption_key": str(keys[i]), "caption": None,
             "audio_id": str(o.audio_ids[o.audio_of_caption[i]]),
             "rank": int(o.t2a_rank[i]) if o.t2a_rank[i] <= o.n_audios else "missed", "top": []} for i in order]


def render_worst(rows: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    table = [[r["caption"] if r["caption"] is not None else r["caption_key"], r["audio_id"], r["rank"],
              ", ".join(f"{a} ({s:.3f})" for a, s in r["top"])] for r in rows]
    return tabulate(table, headers=["caption", "its recording", "rank", "top retrieved (score)"], tablefmt="github")


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    results_dir = Path(args.results_dir)
    runs_dir = Path(args.runs_dir) if getattr(args, "runs_dir", None) else None
    path = _embeddings_of(args.run, results_dir, runs_dir)
    if isinstance(path, Outcomes):
        print(render_worst(worst_from_outcomes(path, n=args.n)))
        print("(from the per-query sidecar: this result keeps no embeddings, so nothing retrieved is listed)")
    else:
        print(render_worst(worst_queries(path, n=args.n)))
    if args.vs:
        other = _embeddings_of(args.vs, results_dir, runs_dir)
        this_o, other_o = (p if isinstance(p, Outcomes) else outcomes_from_npz(p) for p in (path, other))
        diff = rank_differences(this_o, other_o, n=args.n)
        for label, rows in diff.items():
            print(f"\n{label} most against {args.vs}:")
            print(tabulate([[r["caption_key"], r["other_rank"], r["rank"], r["gain"]] for r in rows],
                           headers=["caption", "rank there", "rank here", "gain"], tablefmt="github"))
    return 0
