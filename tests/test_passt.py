"""Tests of the ``passt`` audio encoder plugin (plugins/encoders/passt.py, _passt_model.py)."""

from __future__ import annotations

import math
import os
import socket
import sys
import time
import types

import pytest
import torch
from torch import nn

import bench
from bench.errors import ConfigError, DataError
from bench_plugins.encoders import _passt_model
from bench_plugins.encoders.passt import ARCHS, build_passt, checkpoint_cache_path, register_audio_encoders

SR = 32000
SMALL_ARCH = "passt_l_kd_p16_128_ap47"  # depth 7: the cheapest real PaSST to build on a CPU


@pytest.fixture()
def torch_home(tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return str(tmp_path / "torch")


@pytest.fixture()
def no_network(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the passt plugin tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# ---------------------------------------------------------------- registration and options
def test_registers_passt() -> None:
    seen = {}
    register_audio_encoders(lambda name, factory: seen.__setitem__(name, factory))
    assert seen == {"passt": build_passt}


def test_arch_table_agrees_with_hear21passt() -> None:
    from hear21passt.models.passt import default_cfgs

    for name, arch in ARCHS.items():
        cfg = default_cfgs[arch.cfg_key]
        assert cfg["url"] == arch.url, name
        assert arch.file_name == os.path.basename(cfg["url"])
        # the time grid of the positional encoding must be the one the weights were trained with
        assert arch.input_tdim // arch.tstride == cfg["input_size"][2] // arch.tstride, name
        assert arch.window_seconds * 100 == pytest.approx(arch.input_tdim, abs=2), name


def test_unknown_arch_lists_valid_ones() -> None:
    with pytest.raises(ConfigError) as exc:
        build_passt(arch="passt_xxl", pretrained=False)
    msg = str(exc.value)
    assert "passt_xxl" in msg and all(name in msg for name in ARCHS)


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"window_seconds": 12}, "window_seconds=12"),
        ({"window_seconds": 1, "s_patchout_t": 15}, "s_patchout_t=15"),
        ({"s_patchout_f": 8}, "s_patchout_f=8"),
        ({"max_seconds": 0}, "max_seconds"),
        ({"s_patchout_t": -1}, "s_patchout_t"),
        ({"checkpoint": "/nonexistent/passt.pt", "pretrained": True}, "/nonexistent/passt.pt"),
        ({"checkpoint": "/nonexistent/passt.pt", "pretrained": False}, "pretrained=false"),
    ],
)
def test_bad_options_are_config_errors(options: dict, fragment: str, monkeypatch) -> None:
    monkeypatch.setattr(_passt_model, "_passt_module", _mock_passt_module)  # nothing heavy is built
    kwargs = {"pretrained": False, **options}
    with pytest.raises(ConfigError) as exc:  # through the registry: it checks values by annotation
        bench.load("audio_encoder", "passt", **kwargs)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


# ---------------------------------------------------------------- weights
def test_cache_path_is_timms(torch_home: str) -> None:
    from timm.models._hub import get_cache_dir

    assert checkpoint_cache_path("passt_s_p16_s16_128_ap468") == os.path.join(
        get_cache_dir(), "passt-s-f128-p16-s16-ap.468.pt"
    )
    assert checkpoint_cache_path("passt_20sec").startswith(os.path.join(torch_home, "hub", "checkpoints"))


def test_missing_weights_fail_fast_with_one_clear_error(torch_home: str, no_network, monkeypatch) -> None:
    # If the plugin got as far as importing the model module, this import would fail instead.
    monkeypatch.setitem(sys.modules, "bench_plugins.encoders._passt_model", None)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as exc:
        build_passt()
    assert time.perf_counter() - start < 5
    msg = str(exc.value)
    expected = os.path.join(torch_home, "hub", "checkpoints", "passt-s-f128-p16-s16-ap.468.pt")
    assert expected in msg
    assert ARCHS["passt_s_p16_s16_128_ap468"].url in msg
    assert "--set passt.checkpoint=PATH" in msg and "--set passt.pretrained=false" in msg
    assert "\n" not in msg


@pytest.fixture(scope="module")
def small_net() -> nn.Module:
    """A bare hear21passt network, heads included, like the released weight files."""
    import contextlib
    import io

    from hear21passt.models.passt import get_model

    with contextlib.redirect_stdout(io.StringIO()):
        return get_model(arch=SMALL_ARCH, pretrained=False, fstride=10, tstride=10, input_tdim=998)


@pytest.fixture(scope="module")
def small_state(small_net: nn.Module) -> dict:
    return {k: v.clone() for k, v in small_net.state_dict().items()}


def test_pretrained_weights_load_from_the_cache(small_state: dict, torch_home: str, no_network) -> None:
    path = checkpoint_cache_path(SMALL_ARCH)
    os.makedirs(os.path.dirname(path))
    torch.save(small_state, path)
    enc = build_passt(arch=SMALL_ARCH)
    assert enc.pretrained is True
    loaded = enc.net.state_dict()
    assert set(loaded) == {k for k in small_state if not k.startswith(("head.", "head_dist."))}
    for k, v in loaded.items():
        assert torch.equal(v, small_state[k]), k


def test_checkpoint_wrappers_and_prefix_are_unwrapped(small_net: nn.Module, small_state: dict, tmp_path) -> None:
    path = tmp_path / "lightning.ckpt"
    headless = {k: v for k, v in small_state.items() if not k.startswith(("head.", "head_dist."))}
    torch.save({"state_dict": {f"net.{k}": v for k, v in headless.items()}}, path)
    with torch.no_grad():
        small_net.blocks[6].mlp.fc2.weight.zero_()
    _passt_model.load_passt_state_dict(small_net, str(path), SMALL_ARCH)
    assert torch.equal(small_net.blocks[6].mlp.fc2.weight, small_state["blocks.6.mlp.fc2.weight"])


def test_checkpoint_of_another_arch_gives_a_readable_summary(small_net: nn.Module, small_state: dict, tmp_path) -> None:
    tampered = dict(small_state)
    tampered["time_new_pos_embed"] = torch.zeros(1, 768, 1, 62)  # a stride-16 grid
    del tampered["blocks.6.norm1.weight"]
    tampered["blocks.7.norm1.weight"] = torch.ones(768)
    path = tmp_path / "other.pt"
    torch.save(tampered, path)
    with pytest.raises(ConfigError) as exc:
        _passt_model.load_passt_state_dict(small_net, str(path), SMALL_ARCH)
    msg = str(exc.value)
    assert str(path) in msg and SMALL_ARCH in msg and "\n" not in msg
    assert "time_new_pos_embed: file 1x768x1x62 vs model 1x768x1x99" in msg
    assert "1 missing (blocks.6.norm1.weight)" in msg and "1 unexpected (blocks.7.norm1.weight)" in msg


def test_unreadable_and_unsafe_checkpoints(tmp_path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"model": types.SimpleNamespace(a=1)}, unsafe)  # needs full unpickling: refused
    for path in (garbage, unsafe):
        with pytest.raises(ConfigError, match="cannot read checkpoint"):
            _passt_model.load_passt_state_dict(nn.Linear(1, 1), str(path), SMALL_ARCH)


# ---------------------------------------------------------------- real model: quiet, trains, patchout
def test_construction_and_first_forward_print_nothing(capfd, monkeypatch) -> None:
    import hear21passt.models.passt as passt_module

    monkeypatch.setattr(passt_module, "first_RUN", True)  # as in a fresh process
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")  # no warnings either
        enc = build_passt(arch=SMALL_ARCH, pretrained=False, window_seconds=2, s_patchout_t=5).eval()
        with torch.no_grad():
            out = enc(torch.randn(1, SR) * 0.1, torch.tensor([SR]))
    assert out.shape == (1, 768)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.fixture(scope="module")
def ap468_3s():
    return build_passt(pretrained=False, window_seconds=3)


@pytest.mark.slow
def test_random_init_trains_with_finite_gradients(ap468_3s) -> None:
    enc = ap468_3s.train()
    assert enc.embed_dim == 768 and enc.pretrained is False and enc.crop_seconds == 3 and enc.max_seconds == 30
    torch.manual_seed(0)
    out = enc(torch.randn(2, 3 * SR) * 0.1, torch.tensor([3 * SR, 3 * SR]))
    assert out.shape == (2, 768) and torch.isfinite(out).all()
    enc.zero_grad()
    out.pow(2).sum().backward()
    grads = {n: p.grad for n, p in enc.named_parameters() if p.grad is not None}
    # every parameter takes part (the AudioSet heads are dropped), as DDP requires
    assert set(grads) == {n for n, p in enc.named_parameters()}
    assert not any(n.startswith(("net.head.", "net.head_dist.")) for n in grads)
    assert "net.patch_embed.proj.weight" in grads and "net.blocks.11.mlp.fc2.weight" in grads
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert grads["net.patch_embed.proj.weight"].abs().sum() > 0


def test_patchout_only_in_training(ap468_3s) -> None:
    enc = ap468_3s
    seq = []
    handle = enc.net.blocks[0].register_forward_hook(lambda m, i, o: seq.append(i[0].shape[1]))
    x, n = torch.randn(1, 3 * SR) * 0.1, torch.tensor([3 * SR])
    try:
        with torch.no_grad():
            enc.train()(x, n)
            a = enc.eval()(x, n)
            b = enc(x, n)
    finally:
        handle.remove()
    # 3 s -> 300 frames -> 18 time columns x 8 frequency rows of 16x16 patches, plus 2 tokens
    assert seq == [(18 - 15) * (8 - 2) + 2, 18 * 8 + 2, 18 * 8 + 2]
    assert torch.equal(a, b)  # evaluation is deterministic


def test_freeze_keeps_eval_mode_and_no_grad(monkeypatch) -> None:
    monkeypatch.setattr(_passt_model, "_passt_module", _mock_passt_module)
    enc = build_passt(pretrained=False, freeze=True)
    enc.train()
    assert not enc.training and not enc.frontend.training and not enc.net.training
    assert not any(p.requires_grad for p in enc.parameters())
    out = enc(torch.randn(1, SR), torch.tensor([SR]))
    assert not out.requires_grad


# ---------------------------------------------------------------- long audio, with a mock network
class _MockNet(nn.Module):
    """Stands in for PaSST: features are simple functions of each window's spectrogram."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.calls: list[int] = []

    def forward(self, spec: torch.Tensor):
        self.calls.append(spec.shape[0])
        feats = torch.stack([spec.mean((1, 2, 3)), spec.amax((1, 2, 3)), spec[:, 0, :, :50].mean((1, 2))], 1)
        feats = feats * self.scale
        return torch.zeros(spec.shape[0], 527), feats


def _mock_get_model(**kwargs) -> _MockNet:
    print("a model printout that must not reach the user")
    return _MockNet()


_mock_passt_module = lambda: types.SimpleNamespace(get_model=_mock_get_model, first_RUN=False)  # noqa: E731


@pytest.fixture()
def mock_encoder(monkeypatch):
    monkeypatch.setattr(_passt_model, "_passt_module", _mock_passt_module)
    enc = build_passt(pretrained=False).eval()
    enc.net.calls.clear()
    return enc


def test_embed_dim_is_probed(mock_encoder) -> None:
    assert mock_encoder.embed_dim == 3


def test_window_counts_one_pass_and_mean_over_audio_windows(mock_encoder) -> None:
    enc = mock_encoder
    torch.manual_seed(1)
    long_clip, short_clip = torch.randn(25 * SR) * 0.1, torch.randn(9 * SR) * 0.1
    batch = torch.zeros(2, 25 * SR)
    batch[0] = long_clip
    batch[1, : 9 * SR] = short_clip
    with torch.no_grad():
        out = enc(batch, torch.tensor([25 * SR, 9 * SR]))
    assert enc.net.calls == [4]  # 3 + 1 windows, all in a single forward pass
    # expected: mean over the clip's own windows, the last one zero-padded to 10 s
    padded = torch.nn.functional.pad(long_clip, (0, 5 * SR)).reshape(3, 10 * SR)
    with torch.no_grad():
        expected_long = enc.encode_windows(padded).mean(0)
        expected_short = enc.encode_windows(torch.nn.functional.pad(short_clip, (0, SR))[None])[0]
    torch.testing.assert_close(out[0], expected_long)
    torch.testing.assert_close(out[1], expected_short)


def test_padding_never_changes_a_clip_embedding(mock_encoder) -> None:
    enc = mock_encoder
    torch.manual_seed(2)
    clip = torch.randn(9 * SR) * 0.1
    with torch.no_grad():
        alone = enc(clip[None], torch.tensor([9 * SR]))[0]
        # in a batch padded to 30 s, with garbage (not zeros) beyond its length
        batch = torch.randn(2, 30 * SR)
        batch[1, : 9 * SR] = clip
        together = enc(batch, torch.tensor([30 * SR, 9 * SR]))[1]
    torch.testing.assert_close(together, alone)
    assert enc.net.calls == [1, 4]  # padding windows of the short clip were never computed


def test_window_boundaries_and_max_seconds(mock_encoder) -> None:
    enc = mock_encoder
    x = torch.randn(1, 40 * SR) * 0.1
    with torch.no_grad():
        for seconds, windows in ((10, 1), (10 + 1 / SR, 2), (20, 2), (30, 3), (40, 3)):
            enc.net.calls.clear()
            enc(x, torch.tensor([int(round(seconds * SR))]))
            assert enc.net.calls == [windows], seconds
        torch.testing.assert_close(enc(x, torch.tensor([40 * SR])), enc(x[:, : 30 * SR], torch.tensor([30 * SR])))


def test_longer_archs_use_longer_windows(monkeypatch) -> None:
    monkeypatch.setattr(_passt_model, "_passt_module", _mock_passt_module)
    enc = build_passt(arch="passt_20sec", pretrained=False)
    assert enc.crop_seconds == 20 and enc.window_samples == 20 * SR and enc.frames_per_window == 2000
    enc.net.calls.clear()
    with torch.no_grad():
        enc(torch.zeros(1, 25 * SR), torch.tensor([25 * SR]))
    assert enc.net.calls == [2]


def test_empty_clip_is_a_data_error(mock_encoder) -> None:
    with pytest.raises(DataError, match="batch row 1"):
        mock_encoder(torch.zeros(2, SR), torch.tensor([SR, 0]))


def test_training_mode_reaches_front_end_and_net(mock_encoder) -> None:
    enc = mock_encoder.train()
    assert enc.frontend.training and enc.net.training
    x = torch.randn(1, 2 * SR) * 0.1
    torch.manual_seed(4)
    a = enc(x, torch.tensor([2 * SR]))
    b = enc.eval()(x, torch.tensor([2 * SR]))
    assert not torch.allclose(a, b)  # jitter and masks are on in training only
    assert math.isfinite(float(a.detach().sum()))


@pytest.mark.slow
def test_plugin_module_imports_light() -> None:
    import subprocess

    code = (
        "import sys, bench_plugins.encoders.passt; "
        "print(sorted(m for m in ('torch', 'numpy', 'timm', 'hear21passt') if m in sys.modules))"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env=env, check=True)
    assert out.stdout.strip() == "[]"
