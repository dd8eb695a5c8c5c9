"""`dcase` gives the DCASE 2022 task 6b script's numbers on a Clotho folder with whitespace variants.

The reference is ``eval_script.py`` of xieh97/dcase2022-audio-retrieval at commit
f6fad505857cfe8a6c25e15e799645b5375296e6 (functions ``load_clotho_csv``, ``load_output_csv``,
``retrieval_metrics``). :func:`script_metrics` below transcribes its logic (not its code): the
ground truth is a dict from each caption cell, as ``pandas.read_csv`` returns it (surrounding
spaces kept), to the row's file name, a later row overwriting an earlier one; the submission is a
dict from caption text to its top-10 file names; per key R@k = [the file is in the top k] and
mAP@10 = the sum over hits of (hits so far) / position; each metric is the mean over keys.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from bench.data.loading import SplitData
from bench.evaluation.protocols import protocol_metrics
from bench_plugins.datasets.clotho import ClothoDataset

FOLDERS = ("development", "validation", "evaluation")
N_AUDIOS = 14
# Test-split captions: recording i gets CAPTIONS[i]. Whitespace variants of one text on different
# recordings ("water runs" / "water runs " / " water runs" / a tab), a text repeated verbatim across
# three recordings, one repeated on two, and the rest distinct: 70 captions, 67 distinct cells.
VARIANTS = {0: ["water runs", "a bird sings", "rain on a roof", "a door slams", "wind blows"],
            1: ["water runs ", "a dog barks twice", "wind blows", "a car passes", "people talk"],
            2: [" water runs", "a dog barks twice", "steps on gravel", "a bell rings ", "a bell rings"],
            3: ["water runs\t", "wind blows", "  rain on a roof  ", "a train horn", "a crowd cheers"]}


def _captions(i: int) -> list[str]:
    return VARIANTS.get(i, [f"sound {i} caption {j}" for j in range(5)])


def _write_clotho(root: Path) -> None:
    for code, folder in enumerate(FOLDERS):
        (root / folder).mkdir(parents=True)
        with open(root / f"clotho_captions_{folder}.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)  # quotes only where needed: "water runs " stays unquoted
            writer.writerow(["file_name"] + [f"caption_{j}" for j in range(1, 6)])
            for i in range(N_AUDIOS):
                name = f"{folder}_{i:02d}.wav"
                # Every clip its own length: the fake model below embeds a clip by its length.
                clip = np.random.default_rng([code, i]).uniform(-0.5, 0.5, 1600 + 160 * i).astype(np.float32)
                sf.write(root / folder / name, clip, 16000)
                writer.writerow([name] + _captions(i))


def _text_embedding(text: str) -> np.ndarray:
    """A deterministic 'text encoder': identical stripped texts get identical vectors, as in bench."""
    seed = int.from_bytes(text.strip().encode(), "little") % (2**32)
    return np.random.default_rng(seed).standard_normal(8)


def script_metrics(gt_csv: Path, audio: np.ndarray, file_names: list[str], *, text_dtype: type = np.float64,
                   audio32: np.ndarray | None = None) -> dict[str, float]:
    """The DCASE script's metrics for a system that ranks files by text @ audio (see the module docstring)."""
    table = pd.read_csv(gt_csv)
    truth: dict[str, str] = {}
    for row in table.values.tolist():
        for text in row[1:]:
            truth[text] = row[0]
    # The submission a ranking system writes: each caption key with its 10 best files.
    submission = {}
    for text in truth:
        scores = (audio if audio32 is None else audio32) @ _text_embedding(text).astype(text_dtype)
        submission[text] = [file_names[j] for j in np.argsort(-scores, kind="stable")[:10]]
    r1, r5, r10, ap = [], [], [], []
    for text, relevant in truth.items():
        hits = [name == relevant for name in submission[text]]
        r1.append(float(sum(hits[:1])))
        r5.append(float(sum(hits[:5])))
        r10.append(float(sum(hits[:10])))
        found = [position for position, hit in enumerate(hits[:10], 1) if hit]
        ap.append(sum(k / position for k, position in enumerate(found, 1)))
    return {"R@1": float(np.mean(r1)), "R@5": float(np.mean(r5)), "R@10": float(np.mean(r10)),
            "mAP@10": float(np.mean(ap)), "n_queries": len(truth)}


@pytest.mark.parametrize("seed", range(3))
def test_dcase_protocol_equals_the_script_on_whitespace_variants(tmp_path, seed) -> None:
    _write_clotho(tmp_path)
    split = SplitData.from_items("test", ClothoDataset(tmp_path).split("test"))
    audio = np.random.default_rng(seed).standard_normal((N_AUDIOS, 8))
    text = np.stack([_text_embedding(c) for c in split.captions])
    got = protocol_metrics("dcase", torch.from_numpy(audio), torch.from_numpy(text), split.audio_of_caption,
                           split.source_captions)["t2a"]
    file_names = [item.audio_id for item in split.items]
    want = script_metrics(tmp_path / "clotho_captions_evaluation.csv", audio, file_names)
    assert want["n_queries"] == 67 and split.n_captions == 70
    for key in ("R@1", "R@5", "R@10", "mAP@10"):
        assert got[key] == pytest.approx(want[key], abs=1e-12), key
    # Keying on the stripped captions (what bench did before) merges the variants: other numbers.
    stripped = protocol_metrics("dcase", torch.from_numpy(audio), torch.from_numpy(text), split.audio_of_caption,
                                split.captions)["t2a"]
    assert stripped["mAP@10"] != pytest.approx(want["mAP@10"], abs=1e-9)


def test_clotho_keeps_the_raw_text_beside_the_stripped_one(tmp_path) -> None:
    _write_clotho(tmp_path)
    items = ClothoDataset(tmp_path).split("test")
    assert items[1].captions[0] == "water runs" and items[1].source_captions[0] == "water runs "
    assert items[3].source_captions[2] == "  rain on a roof  " and items[3].captions[2] == "rain on a roof"
    assert items[5].source_captions == ()  # nothing to keep: the text is already clean
    assert pd.read_csv(tmp_path / "clotho_captions_evaluation.csv").values.tolist()[1][1] == "water runs "


class _ByLength:
    """A deterministic 'model': a clip's vector depends on its length, a caption's on its stripped text."""

    stochastic = False
    fingerprint = "dcase-reference-v1"
    sample_rate = 16000

    @staticmethod
    def audio_vector(n_samples: int) -> np.ndarray:
        return np.random.default_rng(n_samples).standard_normal(8)

    def embed_audio(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.audio_vector(int(n)) for n in lengths])).float()

    def embed_text(self, captions: list[str]) -> torch.Tensor:
        return torch.from_numpy(np.stack([_text_embedding(c) for c in captions])).float()


def test_bench_eval_protocol_dcase_gives_the_scripts_numbers(tmp_path, monkeypatch) -> None:
    """The whole `bench eval --protocol dcase` path (dataset plugin, split, embeddings, protocol, result)."""
    import types

    import bench
    from bench.core.registry import Registry
    from bench.evaluation.embedding_cache import EmbeddingCache
    from bench.runs.eval_run import Target, evaluate_target

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    _write_clotho(tmp_path / "clotho")
    module = types.ModuleType("dcase_reference_model")
    module.register_models = bench.hookimpl(lambda register: register("bylength", _ByLength))
    registry = Registry()
    registry.load_entry_points(autoload=False)
    registry.register_module(module, "bylength", distribution="bench-bylength", version="1")
    (result,) = evaluate_target(Target(model="bylength"), "clotho", {"clotho": {"root": str(tmp_path / "clotho")}},
                                protocols=["dcase"], seed=0, batch_size=4, num_workers=0, device="cpu",
                                results_dir=tmp_path / "results", runs_dir=tmp_path / "runs", force=False,
                                registry=registry, cache=EmbeddingCache(tmp_path / "embeddings"))
    assert result["protocol"] == "dcase"
    # The script's numbers for the same system: float32 embeddings, as bench scores them.
    names = [f"evaluation_{i:02d}.wav" for i in range(N_AUDIOS)]
    audio = np.stack([_ByLength.audio_vector(1600 + 160 * i) for i in range(N_AUDIOS)]).astype(np.float32)
    want = script_metrics(tmp_path / "clotho" / "clotho_captions_evaluation.csv", audio.astype(np.float64), names,
                          text_dtype=np.float32, audio32=audio)
    for key in ("R@1", "R@5", "R@10", "mAP@10"):
        assert result["metrics"]["t2a"][key] == pytest.approx(want[key], abs=1e-12), key
