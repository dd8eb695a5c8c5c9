"""The trainer learns: it overfits a tiny in-memory set through its real training step, in seconds.

A trainer that never updates weights (say, the optimizer step went missing in a refactor) still
passes every "0 <= metric <= 1" check; this test does not. Eight random waveforms with two random
captions each are small enough for tiny linear encoders to memorise, so after a few dozen full-batch
steps text-to-audio retrieval on the training split must be almost perfect. Without the optimizer
step the loss stays put, the weights stay put and mAP@10 stays near chance (~0.3 here).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bench.core.config import ComponentSpec, RunConfig, TrainSettings
from bench.data.loading import SplitData
from bench.training.trainer import Components, Trainer
from bench_plugins.losses.ntxent import build_ntxent

SAMPLE_RATE = 8000
N_SAMPLES = 400  # 50 ms clips
N_AUDIO, N_CAPTIONS = 8, 2
EPOCHS = 20  # one full-batch step per epoch; the loss has flattened by ~12


@dataclass
class MemoryItem:
    audio_id: str
    audio_path: str
    captions: list[str]


class MemoryLoader:
    """The AudioLoader interface over waveforms held in memory (no files, no decoding)."""

    def __init__(self, waveforms: dict[str, np.ndarray]) -> None:
        self.waveforms = waveforms

    def duration(self, path: str) -> float:
        return len(self.waveforms[path]) / SAMPLE_RATE

    def sample_rate(self, path: str) -> int:
        return SAMPLE_RATE

    def load(self, path: str, sample_rate: int, offset: float, seconds: float | None) -> np.ndarray:
        start = int(round(offset * sample_rate))
        stop = None if seconds is None else start + int(round(seconds * sample_rate))
        return self.waveforms[path][start:stop]


class LinearAudio(nn.Module):
    """A scratch audio encoder: one Linear over the (zero-padded) waveform."""

    sample_rate = SAMPLE_RATE
    max_seconds = 1.0
    crop_seconds = 1.0  # longer than every clip: the whole clip is the crop
    embed_dim = 32

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(N_SAMPLES, self.embed_dim)

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        padded = torch.zeros(len(waveforms), N_SAMPLES, device=waveforms.device)
        width = min(N_SAMPLES, waveforms.shape[1])
        padded[:, :width] = waveforms[:, :width]
        return self.linear(padded)


class CharBagText(nn.Module):
    """A scratch text encoder: a bag of character embeddings (no tokenizer, no download)."""

    embed_dim = 32

    def __init__(self) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(128, self.embed_dim, mode="mean")

    def forward(self, captions: list[str]) -> torch.Tensor:
        ids = [torch.tensor([ord(c) % 128 for c in caption], dtype=torch.long) for caption in captions]
        offsets = torch.tensor([0] + [len(i) for i in ids[:-1]], dtype=torch.long).cumsum(0)
        device = self.bag.weight.device
        return self.bag(torch.cat(ids).to(device), offsets.to(device))


def tiny_split() -> tuple[SplitData, MemoryLoader]:
    rng = np.random.default_rng(0)
    words = random.Random(0)
    waveforms, items = {}, []
    for index in range(N_AUDIO):
        path = f"mem://{index}"
        waveforms[path] = rng.standard_normal(N_SAMPLES).astype(np.float32)
        captions = ["".join(words.choices(string.ascii_lowercase + " ", k=24)) for _ in range(N_CAPTIONS)]
        items.append(MemoryItem(f"clip{index}", path, captions))
    return SplitData.from_items("train", items), MemoryLoader(waveforms)


def trainable_weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in trainer.model.named_parameters() if p.requires_grad}


@pytest.fixture(scope="module")
def overfit(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Train once through Trainer.build + Trainer.train_epoch; the tests below read what happened."""
    torch.manual_seed(0)
    split, loader = tiny_split()
    settings = TrainSettings(
        epochs=EPOCHS, batch_size=N_AUDIO * N_CAPTIONS, head_lr=1e-2, lr=1e-2, warmup_epochs=0.0, min_lr=1e-3,
        grad_clip=1.0, proj_dim=16, amp="off", num_workers=0, eval_batch_size=64, captions_per_audio=0,
        embedding_cache=False, audio_cache=False,
    )
    cfg = RunConfig(
        dataset=ComponentSpec("memory"), audio_encoder=ComponentSpec("linear"),
        text_encoder=ComponentSpec("charbag"), loss=ComponentSpec("ntxent"),
        seed=0, train=settings, device="cpu",
    )
    components = Components(dataset=None, audio_encoder=LinearAudio(), text_encoder=CharBagText(),
                            loss=build_ntxent(tau=0.1))
    run_dir = Path(tmp_path_factory.mktemp("overfit"))
    splits = {"train": split, "val": split, "test": split}
    trainer = Trainer.build(cfg, components, splits, run_dir, audio_loader=loader)
    before_metrics, _, _ = trainer.evaluate("train")
    before = trainable_weights(trainer)
    losses = [trainer.train_epoch(epoch) for epoch in range(EPOCHS)]
    after_metrics, _, _ = trainer.evaluate("train")
    return {"losses": losses, "before": before, "after": trainable_weights(trainer),
            "before_metrics": before_metrics, "after_metrics": after_metrics}


def test_training_lowers_the_loss(overfit: dict) -> None:
    losses = overfit["losses"]
    assert losses[-1] < 0.5 * losses[0], losses
    assert np.mean(losses[-5:]) < np.mean(losses[:5]), losses


def test_training_changes_every_trainable_tensor(overfit: dict) -> None:
    unchanged = [name for name, value in overfit["before"].items()
                 if torch.equal(value, overfit["after"][name])]
    assert not unchanged, f"these trainable tensors never moved: {unchanged}"


def test_training_split_is_memorised(overfit: dict) -> None:
    before = overfit["before_metrics"]["t2a"]["mAP@10"]
    after = overfit["after_metrics"]["t2a"]["mAP@10"]
    assert after >= 0.9, f"train-split t2a mAP@10 {after:.3f} (was {before:.3f} before training)"
    assert overfit["after_metrics"]["a2t"]["mAP@10"] >= 0.8


class _VectorLoss(torch.nn.Module):
    """Breaks the loss contract: one value per pair instead of a scalar."""

    def forward(self, audio: torch.Tensor, text: torch.Tensor, batch: object) -> torch.Tensor:
        return (audio * text).sum(dim=1)


def test_a_loss_that_breaks_its_contract_is_one_line_naming_it(tmp_path: Path) -> None:
    from bench.errors import ConfigError

    split, loader = tiny_split()
    settings = TrainSettings(epochs=1, batch_size=N_AUDIO * N_CAPTIONS, proj_dim=8, amp="off", num_workers=0,
                             captions_per_audio=0, embedding_cache=False, audio_cache=False)
    cfg = RunConfig(dataset=ComponentSpec("memory"), audio_encoder=ComponentSpec("linear"),
                    text_encoder=ComponentSpec("charbag"), loss=ComponentSpec("vector"), seed=0, train=settings,
                    device="cpu")
    components = Components(dataset=None, audio_encoder=LinearAudio(), text_encoder=CharBagText(),
                            loss=_VectorLoss())
    trainer = Trainer.build(cfg, components, {"train": split, "val": split, "test": split}, tmp_path,
                            audio_loader=loader)
    with pytest.raises(ConfigError, match=r"^loss 'vector': forward returned shape \(16,\), expected a scalar"):
        trainer.train_epoch(0)
