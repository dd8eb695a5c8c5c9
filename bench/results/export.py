"""``bench export``: a finished run's (or eval's, or scored embeddings') rankings in outside formats.

The rankings are recomputed from the stored test embeddings with the scores the result's own
metrics came from (fp32, the run's evaluation chunk), so ``bench score`` of an export gives the
result's metrics back (the round trip the tests hold). TREC scores are written as float64 (exact
for fp32 values): ties and order survive the text. Ids and grammar: ``docs/formats.md``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from bench.core.atomic import atomic_path
from bench.errors import ConfigError, DataError
from bench.evaluation.metrics import MAP_CUTOFF
from bench.evaluation.per_query import caption_slots, read_embeddings
from bench.results.files import read_result
from bench.results.run_files import trec_id

EXPORT_FORMATS = ("trec", "dcase", "npz", "npz-embeddings", "npz-scores")
SUFFIX = {"trec": ".trec", "dcase": ".csv", "npz": ".npz", "npz-embeddings": ".npz", "npz-scores": ".scores.npz"}
DEFAULT_CHUNK = 2048


class Source:
    """What is exported: the test embeddings in split order, their ids, and the chunk of the scores."""

    def __init__(self, embeddings: Path, chunk: int, name: str) -> None:
        e = read_embeddings(embeddings)
        with np.load(embeddings, allow_pickle=False) as data:
            self.captions = data["captions"].astype(str) if "captions" in data.files else None
        self.name = name
        self.audio = torch.from_numpy(np.asarray(e["audio"], dtype=np.float32))
        self.text = torch.from_numpy(np.asarray(e["text"], dtype=np.float32))
        self.audio_ids = np.asarray(e["audio_ids"]).astype(str)
        aoc = np.asarray(e["audio_of_caption"], dtype=np.int64)
        slots = caption_slots(aoc, self.audio_ids.size)
        self.audio_of_caption = aoc
        self.caption_ids = np.char.add(np.char.add(self.audio_ids[aoc], "#"), slots.astype(str))
        self.chunk = chunk

    def scores(self, direction: str) -> Iterator[tuple[int, torch.Tensor]]:
        """``(first query row, score rows)`` chunk by chunk, exactly as the metrics computed them."""
        queries, docs = (self.text, self.audio) if direction == "t2a" else (self.audio, self.text)
        with torch.inference_mode():
            for start in range(0, queries.shape[0], self.chunk):
                yield start, queries[start:start + self.chunk] @ docs.T


def resolve(target: str, results_dir: Path) -> Source:
    """A result .json, a run id in ``results_dir``, a run directory or a test_embeddings.npz."""
    from bench.results.verify import embeddings_path

    path = Path(target)
    if path.is_dir() and (path / "test_embeddings.npz").is_file():
        return Source(path / "test_embeddings.npz", DEFAULT_CHUNK, path.name)
    if path.suffix == ".npz" and path.is_file():
        return Source(path, DEFAULT_CHUNK, path.stem)
    if not (path.suffix == ".json" and path.is_file()):
        path = Path(results_dir) / f"{target}.json"
        if not path.is_file():
            raise ConfigError(f"{target!r} is neither a result .json, a run id in {results_dir}, a run directory "
                              "nor a test_embeddings.npz")
    result = read_result(path)
    embeddings = embeddings_path(result, path)
    if embeddings is None:
        recorded = (result.get("artifacts") or {}).get("test_embeddings") or "none recorded"
        raise DataError(f"{path}: its test embeddings are not here ({recorded}); export needs a run, an eval or a "
                        "scored .npz of embeddings, with its run directory")
    chunk = (result.get("training") or {}).get("eval_chunk")
    chunk = chunk if isinstance(chunk, int) and not isinstance(chunk, bool) and chunk > 0 else DEFAULT_CHUNK
    return Source(embeddings, chunk, result["run_id"])


def export(source: Source, fmt: str, output: Path, *, direction: str = "both", depth: int | None = None,
           qrels: Path | None = None) -> list[Path]:
    """Write ``source`` in ``fmt`` to ``output`` (and the qrels for TREC); returns the files written."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"--format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
    if direction not in ("t2a", "a2t", "both"):
        raise ConfigError(f"--direction {direction!r}: use t2a, a2t or both")
    if depth is not None and depth < MAP_CUTOFF:
        raise ConfigError(f"--depth {depth}: bench scores need at least the top {MAP_CUTOFF} per query")
    output = Path(output)
    directions = ("t2a", "a2t") if direction == "both" else (direction,)
    written = [output]
    if fmt == "trec":
        write_trec(source, output, directions, depth)
        if qrels is not None:
            write_qrels(source, Path(qrels), directions)
            written.append(Path(qrels))
    elif fmt == "dcase":
        write_dcase(source, output)
    elif fmt in ("npz", "npz-embeddings"):
        with atomic_path(output) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, audio=source.audio.numpy(), text=source.text.numpy(), audio_ids=source.audio_ids,
                     caption_ids=source.caption_ids)
    else:
        t2a = torch.cat([s for _, s in source.scores("t2a")]).numpy()
        a2t = torch.cat([s for _, s in source.scores("a2t")]).numpy()
        with atomic_path(output) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, scores=t2a, a2t_scores=a2t, caption_ids=source.caption_ids, audio_ids=source.audio_ids)
    return written


def _ids(source: Source, direction: str) -> tuple[np.ndarray, np.ndarray]:
    queries, docs = (source.caption_ids, source.audio_ids) if direction == "t2a" else (source.audio_ids,
                                                                                      source.caption_ids)
    return trec_id(queries), trec_id(docs)


def write_trec(source: Source, output: Path, directions: tuple[str, ...], depth: int | None) -> None:
    """``QID Q0 DOCID RANK SCORE TAG``, best first per query, chunk by chunk (bounded memory)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    schema = pa.schema([("qid", pa.string()), ("q0", pa.string()), ("docid", pa.string()), ("rank", pa.int64()),
                        ("score", pa.float64()), ("tag", pa.string())])
    options = pacsv.WriteOptions(include_header=False, delimiter=" ", quoting_style="none")
    tag = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in source.name) or "bench"
    with atomic_path(output) as tmp, pacsv.CSVWriter(tmp, schema, write_options=options) as writer:
        for direction in directions:
            qids, dids = _ids(source, direction)
            for start, scores in source.scores(direction):
                k = scores.shape[1] if depth is None else min(depth, scores.shape[1])
                values, order = torch.sort(scores, dim=1, descending=True, stable=True)
                values, order = values[:, :k].numpy(), order[:, :k].numpy()
                rows = values.shape[0]
                writer.write_table(pa.table({
                    "qid": pa.array(np.repeat(qids[start:start + rows], k)),
                    "q0": pa.array(np.full(rows * k, "Q0")),
                    "docid": pa.array(dids[order.ravel()]),
                    "rank": pa.array(np.tile(np.arange(1, k + 1), rows)),
                    "score": pa.array(values.ravel().astype(np.float64)),
                    "tag": pa.array(np.full(rows * k, tag)),
                }, schema=schema))


def write_qrels(source: Source, output: Path, directions: tuple[str, ...]) -> None:
    """``QID 0 DOCID 1`` for every relevant pair: a caption's file (t2a), a file's captions (a2t)."""
    pairs = np.stack([source.caption_ids, source.audio_ids[source.audio_of_caption]], axis=1)
    with atomic_path(output) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        for direction in directions:
            cap, aud = trec_id(pairs[:, 0]), trec_id(pairs[:, 1])
            first, second = (cap, aud) if direction == "t2a" else (aud, cap)
            handle.writelines(f"{q} 0 {d} 1\n" for q, d in zip(first, second))


def write_dcase(source: Source, output: Path) -> None:
    """The DCASE submission: header, then ``caption,fname_1..fname_10`` per caption (t2a top 10).

    The caption column holds the caption texts when they are known and unique in the split (what
    DCASE asks); otherwise the caption ids, which ``bench score`` reads as well.
    """
    texts = source.captions
    keys = texts if texts is not None and np.unique(texts).size == texts.size else source.caption_ids
    k = min(MAP_CUTOFF, source.audio_ids.size)
    with atomic_path(output) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["caption"] + [f"fname_{i}" for i in range(1, k + 1)])
        for start, scores in source.scores("t2a"):
            top = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k].numpy()
            for offset, row in enumerate(top):
                writer.writerow([keys[start + offset], *source.audio_ids[row]])


def default_output(source: Source, fmt: str) -> Path:
    return Path(f"{source.name}{SUFFIX[fmt]}")

