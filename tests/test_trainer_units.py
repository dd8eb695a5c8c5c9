"""Units of the trainer and its data plumbing: schedule, device and AMP rules, sampler, splits, model."""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bench.data.items import Item
from bench.data.loading import EpochSampler, SplitData, stable_uniform
from bench.errors import ConfigError, DataError
from bench.model.dual_encoder import DualEncoder, parameter_groups
from bench.training.trainer import amp_dtype, autocast_factory, lr_factor, select_device

CUDA = torch.cuda.is_available()


# -- lr schedule ---------------------------------------------------------------------------------
def schedule(step: int, warmup: int = 10, decay: int = 100, base: float = 1e-3, low: float = 1e-5) -> float:
    return lr_factor(step, warmup_steps=warmup, decay_steps=decay, base_lr=base, min_lr=low)


def test_warmup_is_linear_to_base():
    values = [schedule(step) for step in range(10)]
    assert values == pytest.approx([1e-3 * (step + 1) / 10 for step in range(10)])
    assert values[-1] == pytest.approx(1e-3)
    assert all(b > a for a, b in zip(values, values[1:]))


def test_cosine_from_base_to_min_at_decay_steps():
    assert schedule(10) == pytest.approx(1e-3)
    middle = 10 + (100 - 10) // 2
    assert schedule(middle) == pytest.approx((1e-3 + 1e-5) / 2)
    for step in (25, 40, 77):
        progress = (step - 10) / 90
        assert schedule(step) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * progress)))
    assert schedule(100) == pytest.approx(1e-5)
    decaying = [schedule(step) for step in range(10, 101)]
    assert all(b <= a for a, b in zip(decaying, decaying[1:]))


def test_flat_after_decay_steps():
    assert [schedule(step) for step in (100, 101, 150, 10_000)] == pytest.approx([1e-5] * 4)


def test_no_warmup_starts_at_base():
    assert lr_factor(0, warmup_steps=0, decay_steps=50, base_lr=0.1, min_lr=0.0) == pytest.approx(0.1)
    assert lr_factor(50, warmup_steps=0, decay_steps=50, base_lr=0.1, min_lr=0.0) == pytest.approx(0.0)


# -- devices and precision ---------------------------------------------------------------------------
@pytest.mark.skipif(CUDA, reason="auto picks CUDA where there is one")
def test_select_device_auto_is_cpu_here():
    assert select_device("auto") == torch.device("cpu")


def test_select_device_cpu():
    assert select_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("spec", ["gpu", "", "cuda:x", "meta", "CPU", "cpu,cuda"])
def test_select_device_bad_strings(spec):
    with pytest.raises(ConfigError, match="use auto, cpu, cuda or cuda:N") as info:
        select_device(spec)
    assert repr(spec) in str(info.value)


@pytest.mark.skipif(CUDA, reason="needs a machine without CUDA")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_select_device_cuda_without_cuda(spec):
    with pytest.raises(ConfigError, match="CUDA is not available") as info:
        select_device(spec)
    assert "--device cpu" in str(info.value)


def test_amp_rules():
    cpu = torch.device("cpu")
    assert amp_dtype("auto", cpu) is None
    assert amp_dtype("off", cpu) is None
    assert amp_dtype("off", torch.device("cuda")) is None
    assert amp_dtype("bf16", cpu) is torch.bfloat16
    assert amp_dtype("fp16", torch.device("cuda")) is torch.float16
    with pytest.raises(ConfigError, match="train.amp='fast'"):
        amp_dtype("fast", cpu)


def test_autocast_factory():
    cpu = torch.device("cpu")
    assert autocast_factory(cpu, None) is contextlib.nullcontext
    with autocast_factory(cpu, torch.bfloat16)():
        out = nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype is torch.bfloat16


# -- splits ----------------------------------------------------------------------------------------
def items(caption_counts: list[int], prefix: str = "a") -> list[Item]:
    return [Item(f"{prefix}{i}", Path(f"/x/{prefix}{i}.wav"), tuple(f"caption {i}.{j}" for j in range(n)))
            for i, n in enumerate(caption_counts)]


def test_split_flattens_captions():
    split = SplitData.from_items("train", items([2, 1, 3]))
    assert split.n_audios == 3 and split.n_captions == 6
    assert split.captions == ["caption 0.0", "caption 0.1", "caption 1.0", "caption 2.0", "caption 2.1", "caption 2.2"]
    assert split.audio_of_caption.tolist() == [0, 0, 1, 2, 2, 2]
    assert split.caption_slot.tolist() == [0, 1, 0, 0, 1, 2]
    assert split.summary() == {"n_audios": 3, "n_captions": 6, "fingerprint": split.fingerprint()}


def test_fingerprint_tracks_content():
    base = SplitData.from_items("test", items([2, 2])).fingerprint()
    assert SplitData.from_items("test", items([2, 2])).fingerprint() == base
    changed = items([2, 2])
    changed[1] = Item("a1", changed[1].audio_path, ("caption 1.0", "caption 1.X"))
    assert SplitData.from_items("test", changed).fingerprint() != base
    renamed = items([2, 2])
    renamed[0] = Item("b0", renamed[0].audio_path, renamed[0].captions)
    assert SplitData.from_items("test", renamed).fingerprint() != base
    # The same caption list with a caption moved to the other recording is a different benchmark.
    a = [Item("a0", Path("a0"), ("x", "y")), Item("a1", Path("a1"), ("z",))]
    b = [Item("a0", Path("a0"), ("x",)), Item("a1", Path("a1"), ("y", "z"))]
    assert SplitData.from_items("test", a).fingerprint() != SplitData.from_items("test", b).fingerprint()


def test_split_errors():
    with pytest.raises(DataError, match="the val split is empty"):
        SplitData.from_items("val", [])
    with pytest.raises(DataError, match="'a1' has no captions"):
        SplitData.from_items("train", items([1, 0]))
    class NoCaptions:
        audio_id = "q"
        audio_path = Path("q.wav")

    with pytest.raises(DataError, match=r"train item 1 \(NoCaptions\) has no 'captions'"):
        SplitData.from_items("train", [*items([1]), NoCaptions()])


# -- sampler ---------------------------------------------------------------------------------------
def sample(split: SplitData, seed: int = 0, epoch: int = 0, **kwargs) -> list[int]:
    """The epoch's whole draw (before cutting to whole batches), checked against what the sampler yields."""
    sampler = EpochSampler(split, seed, batch_size=4, **kwargs)
    sampler.set_epoch(epoch)
    out = list(sampler)
    assert len(sampler) == len(out)
    order = sampler.permutation()
    assert out == (order[: len(order) // 4 * 4] if len(order) >= 4 else order)
    return order


def test_sampler_is_a_permutation_determined_by_seed_and_epoch():
    split = SplitData.from_items("train", items([5] * 8))
    first = sample(split, seed=3, epoch=2)
    assert sorted(first) == list(range(40))
    assert sample(split, seed=3, epoch=2) == first
    assert sample(split, seed=3, epoch=3) != first
    assert sample(split, seed=4, epoch=2) != first
    assert first != list(range(40))


def test_sampler_set_epoch_changes_order():
    split = SplitData.from_items("train", items([5] * 8))
    sampler = EpochSampler(split, 0, batch_size=4)
    orders = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        orders.append(list(sampler))
    assert len({tuple(order) for order in orders}) == 3
    sampler.set_epoch(1)
    assert list(sampler) == orders[1]


def test_rank_shards_are_blocks_of_each_global_batch():
    split = SplitData.from_items("train", items([4] * 9))  # 36 pairs = 3 global batches of 3 ranks x 4
    full = EpochSampler(split, 1, batch_size=4)
    full.set_epoch(5)
    order = full.permutation()
    shards = []
    for r in range(3):
        sampler = EpochSampler(split, 1, batch_size=4, rank=r, world_size=3)
        sampler.set_epoch(5)
        shards.append(list(sampler))
    assert [len(s) for s in shards] == [12, 12, 12]
    assert sorted(sum(shards, [])) == list(range(36))
    # Gathering step k of every rank in rank order gives exactly the single process's batch of 12.
    for k in range(3):
        gathered = sum((shard[k * 4 : (k + 1) * 4] for shard in shards), [])
        assert gathered == order[k * 12 : (k + 1) * 12]


def test_rank_shards_drop_the_remainder_like_drop_last():
    split = SplitData.from_items("train", items([5, 5, 5, 5, 3]))  # 23 pairs, global batch 2 x 4 = 8
    shards = []
    for r in range(2):
        sampler = EpochSampler(split, 2, batch_size=4, rank=r, world_size=2)
        shards.append(list(sampler))
    single = list(EpochSampler(split, 2, batch_size=8))
    assert [len(s) for s in shards] == [8, 8] and len(single) == 16  # 2 whole global batches; 7 pairs dropped
    assert sorted(sum(shards, [])) == sorted(single)


def test_tiny_split_is_padded_by_wrapping():
    split = SplitData.from_items("train", items([3, 2]))  # 5 pairs < one global batch of 4 x 8
    full = EpochSampler(split, 2, batch_size=8).permutation()
    shards = [list(EpochSampler(split, 2, batch_size=8, rank=r, world_size=4)) for r in range(4)]
    assert [len(s) for s in shards] == [2, 2, 2, 2]
    assert sum(shards, []) == full + full[:3]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_captions_per_audio_draws_k_per_recording(k):
    split = SplitData.from_items("train", items([5, 4, 3, 5, 5, 6]))
    drawn = sample(split, seed=0, epoch=1, captions_per_audio=k)
    assert len(drawn) == len(set(drawn)) == 6 * k
    per_audio = Counter(int(split.audio_of_caption[i]) for i in drawn)
    assert per_audio == {audio: k for audio in range(6)}
    assert sample(split, seed=0, epoch=1, captions_per_audio=k) == drawn
    # Another epoch draws other captions (or at least another order).
    assert sample(split, seed=0, epoch=2, captions_per_audio=k) != drawn


def test_captions_per_audio_varies_the_captions_across_epochs():
    split = SplitData.from_items("train", items([5] * 10))
    chosen = [set(sample(split, seed=0, epoch=e, captions_per_audio=1)) for e in range(4)]
    assert len({frozenset(c) for c in chosen}) > 1


def test_captions_per_audio_short_recording_gives_all():
    split = SplitData.from_items("train", items([1, 5]))
    drawn = sample(split, captions_per_audio=3)
    per_audio = Counter(int(split.audio_of_caption[i]) for i in drawn)
    assert per_audio == {0: 1, 1: 3}


def test_stable_uniform():
    assert stable_uniform(1, 2, 3) == stable_uniform(1, 2, 3)
    assert stable_uniform(1, 2, 3) != stable_uniform(1, 2, 4)
    assert stable_uniform(1, 2, 3) != stable_uniform(3, 2, 1)
    assert stable_uniform(-5, 0) == stable_uniform(-5, 0)
    values = np.array([stable_uniform(7, 0, i) for i in range(2000)])
    assert values.min() >= 0.0 and values.max() < 1.0
    assert abs(values.mean() - 0.5) < 0.03
    assert len(np.unique(values)) == 2000


# -- model -----------------------------------------------------------------------------------------
class TinyAudio(nn.Module):
    embed_dim = 8

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        self.pretrained = pretrained
        self.layer = nn.Linear(16, self.embed_dim)

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.layer(waveforms[:, :16])


class TinyText(nn.Module):
    embed_dim = 6

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        self.pretrained = pretrained
        self.table = nn.Embedding(64, self.embed_dim)

    def forward(self, captions: list[str]) -> torch.Tensor:
        return self.table(torch.tensor([len(c) % 64 for c in captions]))


class TinyLoss(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.register_buffer("not_a_param", torch.zeros(()))


def test_dual_encoder_outputs_unit_vectors():
    torch.manual_seed(0)
    model = DualEncoder(TinyAudio(), TinyText(), proj_dim=12)
    audio = model.encode_audio(torch.randn(5, 32) * 10, torch.full((5,), 32))
    text = model.encode_text(["a", "dog barks", "rain", "a car passes by", ""])
    assert audio.shape == (5, 12) and text.shape == (5, 12)
    assert audio.dtype is torch.float32
    assert torch.allclose(audio.norm(dim=-1), torch.ones(5), atol=1e-5)
    assert torch.allclose(text.norm(dim=-1), torch.ones(5), atol=1e-5)


def test_dual_encoder_needs_embed_dim():
    class NoDim(nn.Module):
        pass

    with pytest.raises(TypeError, match="embed_dim"):
        DualEncoder(NoDim(), TinyText())


def test_frozen_encoder_stays_in_eval_mode():
    audio = TinyAudio(pretrained=True)
    audio.requires_grad_(False)
    model = DualEncoder(audio, TinyText()).train()
    assert not model.audio_encoder.training
    assert model.text_encoder.training and model.audio_proj.training


def _ids(params) -> set[int]:
    return {id(p) for p in params}


def test_parameter_groups_pretrained_vs_scratch():
    model = DualEncoder(TinyAudio(pretrained=True), TinyText(pretrained=False), proj_dim=4)
    loss = TinyLoss()
    groups = parameter_groups(model, loss, lr=2e-5, head_lr=1e-3, weight_decay=0.01)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"pretrained", "new"}
    assert by_name["pretrained"]["lr"] == by_name["pretrained"]["base_lr"] == 2e-5
    assert by_name["new"]["lr"] == by_name["new"]["base_lr"] == 1e-3
    assert all(g["weight_decay"] == 0.01 for g in groups)
    assert _ids(by_name["pretrained"]["params"]) == _ids(model.audio_encoder.parameters())
    expected_new = (_ids(model.text_encoder.parameters()) | _ids(model.audio_proj.parameters())
                    | _ids(model.text_proj.parameters()) | {id(loss.log_scale)})
    assert _ids(by_name["new"]["params"]) == expected_new
    # Every trainable parameter is in exactly one group.
    everything = [id(p) for g in groups for p in g["params"]]
    assert len(everything) == len(set(everything))


def test_parameter_groups_frozen_and_all_scratch():
    frozen = TinyAudio(pretrained=True)
    frozen.requires_grad_(False)
    model = DualEncoder(frozen, TinyText(), proj_dim=4)
    groups = parameter_groups(model, nn.Identity(), lr=2e-5, head_lr=1e-3, weight_decay=0.0)
    assert [g["name"] for g in groups] == ["new"]
    assert not _ids(groups[0]["params"]) & _ids(frozen.parameters())
    assert _ids(groups[0]["params"]) >= _ids(model.text_encoder.parameters())
    # Both pretrained: text goes to the `lr` group too.
    model = DualEncoder(TinyAudio(pretrained=True), TinyText(pretrained=True), proj_dim=4)
    groups = {g["name"]: g for g in parameter_groups(model, nn.Identity(), 2e-5, 1e-3, 0.0)}
    assert _ids(groups["pretrained"]["params"]) == (_ids(model.audio_encoder.parameters())
                                                     | _ids(model.text_encoder.parameters()))
    assert _ids(groups["new"]["params"]) == _ids(model.audio_proj.parameters()) | _ids(model.text_proj.parameters())
