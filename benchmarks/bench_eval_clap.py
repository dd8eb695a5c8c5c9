"""Zero-shot scoring throughput of a frozen CLAP at its real size, first pass and cached second pass.

Builds ``ClapConfig()`` (HTSAT-tiny audio tower + RoBERTa-base text tower, the architecture of
``laion/clap-htsat-unfused``) with random weights, saves it with a byte-level BPE tokenizer trained
on the synthetic captions (so token counts are word-like, as with RoBERTa's own vocabulary) and
scores the synthetic test split through ``bench eval``'s code path twice with one embedding cache.
Reports clips/s and captions/s, and splits the audio time into the feature extractor (mel on
the CPU, numpy) and the model's forward pass, and the cache key's weight hashing.

    .venv/bin/python benchmarks/bench_eval_clap.py --n-test 100
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def save_real_size_clap(directory: Path, captions: list[str]) -> None:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(captions, vocab_size=2000, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(directory))
    tokenizer = RobertaTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"), model_max_length=512)
    torch.manual_seed(0)
    ClapModel(ClapConfig()).save_pretrained(directory)
    extractor = ClapFeatureExtractor()  # the LAION defaults: 48 kHz, 10 s window; unfused: rand_trunc below
    extractor.truncation = "rand_trunc"
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(directory)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    from bench.core.registry import get_registry
    from bench.data.loading import SplitData
    from bench.evaluation.embedding_cache import EmbeddingCache
    from bench.runs.eval_run import Target, build_target, embed_test

    registry = get_registry()
    dataset = registry.build("dataset", "synthetic", {"n_train": 4, "n_val": 4, "n_test": args.n_test})
    split = SplitData.from_items("test", dataset.split("test"))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "clap"
        model_dir.mkdir()
        save_real_size_clap(model_dir, split.captions)
        started = time.perf_counter()
        built = build_target(Target(model="clap", options={"model": str(model_dir)}), registry, Path("runs"))
        load_s = time.perf_counter() - started
        model = built.model
        params = sum(p.numel() for p in model.parameters())
        timers = {"features": 0.0, "forward_audio": 0.0, "text": 0.0}
        audio_inputs, embed_audio, embed_text = model.audio_inputs, model.embed_audio, model.embed_text

        def timed_inputs(*a):  # noqa: ANN001, ANN202
            t = time.perf_counter()
            out = audio_inputs(*a)
            timers["features"] += time.perf_counter() - t
            return out

        def timed_audio(*a):  # noqa: ANN001, ANN202
            t = time.perf_counter()
            out = embed_audio(*a)
            timers["forward_audio"] += time.perf_counter() - t
            return out

        def timed_text(*a):  # noqa: ANN001, ANN202
            t = time.perf_counter()
            out = embed_text(*a)
            timers["text"] += time.perf_counter() - t
            return out

        model.audio_inputs, model.embed_audio, model.embed_text = timed_inputs, timed_audio, timed_text
        started = time.perf_counter()
        print(f"fingerprint {model.fingerprint}")
        hash_s = time.perf_counter() - started
        cache = EmbeddingCache(Path(tmp) / "cache")
        rows = []
        for name in ("first pass", "cached second pass"):
            for key in timers:
                timers[key] = 0.0
            started = time.perf_counter()
            embed_test(built, split, seed=0, batch_size=args.batch_size, num_workers=0, cache=cache)
            total = time.perf_counter() - started
            audio_s = timers["forward_audio"]
            rows.append((name, total, audio_s, timers["features"], timers["text"], cache.hits, cache.misses))
    print(f"ClapConfig() random init: {params / 1e6:.1f} M parameters, load {load_s:.1f} s, "
          f"weight hash for the cache key {hash_s:.1f} s; {split.n_audios} clips, {split.n_captions} captions, "
          f"batch {args.batch_size}, torch threads {torch.get_num_threads()}")
    print("| pass | wall s | audio s (of which mel features) | text s | clips/s | captions/s | cache hits/misses |")
    print("|---|---|---|---|---|---|---|")
    for name, total, audio_s, feat_s, text_s, hits, misses in rows:
        clips = f"{split.n_audios / audio_s:.1f}" if audio_s else f"{split.n_audios / total:.0f} (cache)"
        caps = f"{split.n_captions / text_s:.1f}" if text_s else f"{split.n_captions / total:.0f} (cache)"
        print(f"| {name} | {total:.1f} | {audio_s:.1f} ({feat_s:.1f}) | {text_s:.1f} | {clips} | {caps} | "
              f"{hits}/{misses} |")


if __name__ == "__main__":
    main()
