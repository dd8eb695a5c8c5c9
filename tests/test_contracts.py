"""Component contracts (bench.contracts): what a factory returns, first outputs, plugin hook names."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from bench import contracts, hookimpl
from bench.core.registry import DISABLE_AUTOLOAD_ENV, Registry
from bench.errors import ConfigError
from bench.model.dual_encoder import DualEncoder

ROOT = Path(__file__).resolve().parents[1]


class Audio(nn.Module):
    def __init__(self, embed_dim: int = 8, out_dim: int | None = None, nan: bool = False, sample_rate=16000):
        super().__init__()
        self.sample_rate = sample_rate
        self.embed_dim = embed_dim
        self.out_dim = embed_dim if out_dim is None else out_dim
        self.nan = nan
        self.lin = nn.Linear(1, self.out_dim)

    def forward(self, waveforms, lengths):
        out = self.lin(waveforms.mean(dim=1, keepdim=True))
        return out * float("nan") if self.nan else out


class Text(nn.Module):
    embed_dim = 6

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 6)

    def forward(self, captions):
        return self.lin(torch.ones(len(captions), 1))


def _with(module: nn.Module, **attrs) -> nn.Module:
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def _registry(kind_hook: str, name: str, factory, dist: str = "bar", version: str = "1.0") -> Registry:
    plugin = SimpleNamespace(**{kind_hook: hookimpl(lambda register: register(name, factory))})
    registry = Registry()
    status = registry.register_module(plugin, "myplugin", dist, version)
    assert status.ok, status.error
    return registry


# -- what a factory returns -------------------------------------------------------------------------
def test_factory_returning_a_string_is_one_line_naming_plugin_and_component():
    registry = _registry("register_audio_encoders", "foo", lambda: "not a module")
    with pytest.raises(ConfigError) as info:
        registry.build("audio_encoder", "foo")
    assert str(info.value) == (
        "audio encoder 'foo' (plugin bar 1.0): factory returned str, expected a torch.nn.Module with "
        "sample_rate, embed_dim and forward(waveforms, lengths)"
    )


@pytest.mark.parametrize(
    "build, fragment",
    [
        (lambda: Audio(sample_rate=0), "sample_rate=0 (int); it must be an int > 0"),
        (lambda: Audio(sample_rate=16000.0), "sample_rate=16000.0 (float)"),
        (lambda: _with(Audio(), embed_dim=True), "embed_dim=True (bool)"),
    ],
)
def test_audio_encoder_attributes_are_checked(build, fragment):
    registry = _registry("register_audio_encoders", "enc", build)
    with pytest.raises(ConfigError, match=r"^audio encoder 'enc' \(plugin bar 1.0\): ") as info:
        registry.build("audio_encoder", "enc")
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_missing_attribute_and_wrong_kinds():
    class NoDim(nn.Module):
        def forward(self, captions):
            return captions

    assert contracts.contract_problem("text_encoder", NoDim()) == (
        "NoDim has no attribute embed_dim; it must be an int > 0")
    assert "factory returned int" in contracts.contract_problem("loss", 3)
    assert "without a callable split(name)" in contracts.contract_problem("dataset", SimpleNamespace(split=3))
    assert contracts.contract_problem("dataset", SimpleNamespace(split=lambda name: [])) is None
    assert contracts.contract_problem("logger", object()) is None  # kinds without a contract here
    bad_optional = Audio()
    bad_optional.pretrained = "yes"
    assert contracts.contract_problem("audio_encoder", bad_optional) == "pretrained='yes'; it must be True or False"


def test_valid_components_pass_and_match_the_protocols():
    registry = _registry("register_audio_encoders", "enc", Audio)
    encoder = registry.build("audio_encoder", "enc", {"embed_dim": 4})
    assert isinstance(encoder, contracts.AudioEncoder)
    assert isinstance(Text(), contracts.TextEncoder)
    assert isinstance(SimpleNamespace(split=lambda n: []), contracts.Dataset)
    assert isinstance(SimpleNamespace(audio_id="a", audio_path="a.wav", captions=["x"]), contracts.Item)


# -- first forward --------------------------------------------------------------------------------
def test_wrong_width_audio_output_is_one_line():
    model = DualEncoder(Audio(embed_dim=32, out_dim=7), Text(), proj_dim=4, audio_name="cnn")
    with pytest.raises(ConfigError) as info:
        model.audio_features(torch.zeros(4, 100), torch.full((4,), 100))
    assert str(info.value) == ("audio encoder 'cnn': forward returned shape (4, 7), expected (4, 32) "
                               "= (batch, embed_dim)")


def test_nan_output_is_one_line_and_checked_once():
    model = DualEncoder(Audio(nan=True), Text(), proj_dim=4, audio_name="nanenc")
    with pytest.raises(ConfigError, match=r"^audio encoder 'nanenc': forward returned NaN/inf values on its first"):
        model.audio_features(torch.zeros(2, 10), torch.full((2,), 10))
    good = DualEncoder(Audio(), Text(), proj_dim=4)
    good.audio_features(torch.zeros(2, 10), torch.full((2,), 10))
    good.audio_encoder.nan = True  # later batches are not checked: the check costs once
    assert torch.isnan(good.audio_features(torch.zeros(2, 10), torch.full((2,), 10))).all()


def test_text_output_is_checked_with_default_names():
    class Wide(Text):
        embed_dim = 5

    model = DualEncoder(Audio(), Wide(), proj_dim=4)
    with pytest.raises(ConfigError, match=r"^text encoder 'Wide': forward returned shape \(3, 6\), expected \(3, 5\)"):
        model.text_features(["a", "b", "c"])


def test_loss_value_check():
    contracts.check_loss_value("loss 'x'", torch.tensor(1.0))
    with pytest.raises(ConfigError, match=r"^loss 'x': forward returned shape \(2,\), expected a scalar"):
        contracts.check_loss_value("loss 'x'", torch.ones(2))
    with pytest.raises(ConfigError, match=r"^loss 'x': forward returned nan on its first batch"):
        contracts.check_loss_value("loss 'x'", torch.tensor(float("nan")))
    with pytest.raises(ConfigError, match="returned float, expected a scalar tensor"):
        contracts.check_loss_value("loss 'x'", 0.5)


# -- plugin hook names ------------------------------------------------------------------------------
class _Typo:
    @hookimpl
    def register_loss(self, register):  # the hook is register_losses
        register("typo-loss", lambda: None)


def test_unknown_hook_name_fails_the_plugin_and_suggests_the_real_one():
    registry = Registry()
    status = registry.register_module(_Typo(), "typo", "bench-typo", "0.1")
    assert not status.ok
    assert status.error == "implements unknown hook 'register_loss'; did you mean 'register_losses'?"
    assert "typo-loss" not in registry.names("loss")
    # The plugin is unregistered, so a later plugin is not blamed for it.
    later = registry.register_module(SimpleNamespace(
        register_losses=hookimpl(lambda register: register("fine", lambda: None))), "later")
    assert later.ok and later.components == [("loss", "fine")]


def test_plugin_registering_nothing_gets_a_warning():
    registry = Registry()
    empty = registry.register_module(SimpleNamespace(helper=lambda: None), "empty")
    assert empty.ok and empty.warning == "registers nothing: the module has no @bench.hookimpl functions"
    silent = registry.register_module(SimpleNamespace(register_losses=hookimpl(lambda register: None)), "silent")
    assert silent.ok and silent.warning == "registers nothing: register_losses never called register(name, factory)"
    fine = registry.register_module(SimpleNamespace(
        register_losses=hookimpl(lambda register: register("l", lambda: None))), "fine")
    assert fine.warning is None


# -- the command line ------------------------------------------------------------------------------
STRING_FACTORY = """
    from bench import hookimpl

    @hookimpl
    def register_audio_encoders(register):
        register("strenc", lambda: "I am not a module")
"""

TYPO = """
    from bench import hookimpl

    @hookimpl
    def register_loss(register):
        register("typo-loss", lambda: None)
"""


def _site(tmp_path: Path, dist: str, module: str, source: str) -> Path:
    site = tmp_path / "site"
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[bench]\n{module} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    return site


def _bench(*args: str, site: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != DISABLE_AUTOLOAD_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    return subprocess.run([sys.executable, "-m", "bench", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_bench_ls_shows_a_misspelled_hook_as_broken(tmp_path: Path):
    site = _site(tmp_path, "bench-typo", "bench_typo", TYPO)
    _site(tmp_path, "bench-empty", "bench_empty", "HELLO = 1\n")
    proc = _bench("ls", site=site, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert ("warning: plugin bench_empty (bench-empty 1.0) registers nothing: the module has no "
            "@bench.hookimpl functions") in proc.stdout
    failed = proc.stdout.split("failed plugins:")[-1]
    assert "bench_typo" in failed and "bench-typo 1.0" in failed
    assert "unknown hook 'register_loss'; did you mean 'register_losses'?" in failed


@pytest.mark.slow
def test_bench_run_with_a_factory_returning_a_string_is_one_line(tmp_path: Path):
    site = _site(tmp_path, "bench-strenc", "bench_strenc", STRING_FACTORY)
    proc = _bench("run", "--encoder", "strenc", "--dataset", "synthetic", "--set", "synthetic.n_train=4",
                  "--set", "synthetic.n_val=2", "--set", "synthetic.n_test=2", "--epochs", "1",
                  "--results-dir", str(tmp_path / "r"), "--runs-dir", str(tmp_path / "runs"),
                  site=site, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    # Besides the grid's "[1/1] ..." progress line, the error is exactly one line.
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("[1/1] ")]
    assert len(lines) == 1 and lines[0].startswith("bench run: error:")
    assert "audio encoder 'strenc' (plugin bench-strenc 1.0): factory returned str" in proc.stderr
