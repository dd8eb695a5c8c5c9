"""The example third-party plugin and the "Writing a plugin" page that is built from it.

The package is pip-installed (offline: no index, no build isolation) into a temp directory and
used through ``PYTHONPATH`` from subprocesses, so bench finds it through its entry point exactly
as it finds a plugin a user installed.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "examples" / "bench-example-plugin"
DOC = ROOT / "docs" / "writing-a-plugin.md"
DIST = "bench-example-plugin"
COMPONENTS = {"audio_encoder": "example-mfcc", "loss": "example-sigmoid", "dataset": "example-tones"}


# ---- the page --------------------------------------------------------------------------------


def _blocks(text: str) -> list[tuple[str, str, str]]:
    """(language, body, the paragraph just before the fence, on one line) of every fenced block."""
    out = []
    for m in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.S | re.M):
        before = " ".join(text[: m.start()].rstrip("\n").rsplit("\n\n", 1)[-1].split())
        out.append((m.group(1), m.group(2), before))
    return out


def _saved_files(text: str) -> dict[str, str]:
    files = {}
    for _lang, body, before in _blocks(text):
        m = re.search(r"Save this as\s+`([^`]+)`:$", before)
        if m:
            files[m.group(1)] = body
    return files


def _package_files() -> set[str]:
    skip = ("__pycache__", ".egg-info", "build")
    return {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*")
            if p.is_file() and not any(part.endswith(skip) for part in p.relative_to(PACKAGE).parts)}


def _version() -> str:
    import tomllib

    return tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]["version"]


def test_doc_code_blocks_are_the_example_package_files() -> None:
    text = DOC.read_text()
    saved = _saved_files(text)
    code_files = {f for f in _package_files() if f.endswith((".py", ".toml"))}
    assert set(saved) == code_files, "every code file of the example package is shown on the page, and only those"
    for name, body in saved.items():
        assert body == (PACKAGE / name).read_text(), f"docs/writing-a-plugin.md differs from {name}"


def test_doc_layout_tree_matches_the_package() -> None:
    tree = next(body for lang, body, _ in _blocks(DOC.read_text()) if lang == "text" and "├──" in body)
    listed, folder = set(), ""
    for line in tree.splitlines()[1:]:
        name = re.sub(r"^[│├└─\s]+", "", line)
        if name.endswith("/"):
            folder = name
        else:
            listed.add(folder + name if line.startswith("    ") or line.startswith("│") else name)
    assert listed == _package_files()


def _plain(text: str) -> str:
    return " ".join(text.replace("``", "`").split())


def test_doc_contracts_are_the_contracts_wording() -> None:
    import inspect

    import bench.contracts

    doc = _plain(DOC.read_text())
    for name, title in (("AudioEncoder", "Audio encoder"), ("TextEncoder", "Text encoder"), ("Loss", "Loss"),
                        ("Dataset", "Dataset")):
        body = _plain(inspect.getdoc(getattr(bench.contracts, name)))
        assert f"**{title}.** {body}" in doc, f"the {title} contract on the page is stale"


def test_doc_mentions_every_entry_point_step() -> None:
    text = DOC.read_text()
    for needle in ("[project.entry-points.bench]", "pip install -e .", "bench ls", "bench.load(",
                   "BENCH_DISABLE_PLUGIN_AUTOLOAD=1", "from bench import hookimpl"):
        assert needle in text


# ---- the components, imported straight from the source tree ----------------------------------


@pytest.fixture(scope="module")
def plugin_module():
    sys.path.insert(0, str(PACKAGE))
    try:
        import bench_example_plugin

        yield bench_example_plugin
    finally:
        sys.path.remove(str(PACKAGE))


@pytest.mark.slow
def test_plugin_module_top_level_imports_are_light() -> None:
    code = ("import sys, bench_example_plugin; "
            "print(sorted(m for m in ('torch', 'numpy', 'transformers') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE), str(ROOT)])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sigmoid_loss_matches_a_loop_over_pairs(plugin_module) -> None:
    import torch
    import torch.nn.functional as F

    ids = [4, 1, 4, 2, 1]
    g = torch.Generator().manual_seed(0)
    audio = F.normalize(torch.randn(5, 6, generator=g), dim=-1)
    text = F.normalize(torch.randn(5, 6, generator=g), dim=-1)
    loss = plugin_module.build_sigmoid(scale=7.0, bias=-3.0)
    got = loss(audio, text, SimpleNamespace(audio_ids=torch.tensor(ids)))
    want = 0.0
    for i in range(5):
        for j in range(5):
            z = 1.0 if ids[i] == ids[j] else -1.0  # same recording: a positive, not a negative
            logit = 7.0 * float(audio[i] @ text[j]) - 3.0
            want += math.log1p(math.exp(-z * logit))
    assert float(got.detach()) == pytest.approx(want / 5, rel=1e-5)
    got.backward()
    assert loss.log_scale.grad is not None and loss.bias.grad is not None
    frozen = plugin_module.build_sigmoid(learnable=False)
    assert not list(frozen.parameters())


def test_mfcc_encoder_ignores_padding(plugin_module) -> None:
    import torch

    encoder = plugin_module.build_mfcc(embed_dim=16).eval()
    assert encoder.sample_rate == 16000 and encoder.embed_dim == 16
    g = torch.Generator().manual_seed(1)
    short, long = torch.randn(5000, generator=g) * 0.3, torch.randn(12000, generator=g) * 0.3
    batch = torch.zeros(2, 12000)
    batch[0, :5000], batch[1] = short, long
    with torch.no_grad():
        together = encoder(batch, torch.tensor([5000, 12000]))
        alone = encoder(short[None], torch.tensor([5000]))
        tiny = encoder(torch.zeros(1, 10), torch.tensor([10]))  # shorter than one window
    assert together.shape == (2, 16)
    torch.testing.assert_close(together[0], alone[0], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(together[0], together[1], atol=1e-3)
    assert torch.isfinite(tiny).all()
    with pytest.raises(ValueError, match="n_coeffs"):
        plugin_module.build_mfcc(n_bands=10, n_coeffs=20)


def test_tones_dataset_items_are_duck_typed_and_written_once(plugin_module, tmp_path: Path) -> None:
    import soundfile as sf

    from bench.data.validate import validate_dataset

    tones = plugin_module.build_tones(root=str(tmp_path), seconds=0.5)
    splits = {name: tones.split(name) for name in ("train", "val", "test")}
    assert {k: len(v) for k, v in splits.items()} == {"train": 16, "val": 8, "test": 8}
    ids = [item.audio_id for items in splits.values() for item in items]
    assert len(set(ids)) == 32
    captions = [c for items in splits.values() for item in items for c in item.captions]
    assert len(set(captions)) == 64, "every clip has its own two captions"
    item = splits["test"][0]
    assert type(item).__module__ == "bench_example_plugin.tones"
    audio, rate = sf.read(item.audio_path)
    assert rate == 16000 and audio.shape == (8000,) and 0.05 < abs(audio).max() <= 1.0
    reports = validate_dataset(tones, sample_rate=16000, cache_dir=False)
    assert all(report.ok for report in reports.values()), [str(b) for r in reports.values() for b in r.bad]
    mtime = item.audio_path.stat().st_mtime_ns
    plugin_module.build_tones(root=str(tmp_path), seconds=0.5)
    assert item.audio_path.stat().st_mtime_ns == mtime, "existing files are reused"
    item.audio_path.write_bytes(b"RIFF")  # damaged: rewritten on the next build
    plugin_module.build_tones(root=str(tmp_path), seconds=0.5)
    assert sf.info(str(item.audio_path)).frames == 8000
    assert not list(tmp_path.rglob("*.tmp")), "no temp files left behind"
    with pytest.raises(ValueError, match="splits"):
        tones.split("dev")


# ---- the installed package -------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> SimpleNamespace:
    """The example package pip-installed (offline) into a temp target directory."""
    base = tmp_path_factory.mktemp("example-plugin")
    source = base / "src"
    # Build from a copy: building in place would leave build/ and *.egg-info in the repository.
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    target = base / "site"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
         "--target", str(target), str(source)],
        env=env, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (target / f"bench_example_plugin-{_version()}.dist-info" / "entry_points.txt").is_file()
    run_env = {key: value for key, value in os.environ.items() if key != "BENCH_DISABLE_PLUGIN_AUTOLOAD"}
    run_env.update({
        "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)]),
        "BENCH_CACHE": str(base / "cache"),
        "BENCH_PROGRESS": "0",
        "TMPDIR": str(base / "tmp"),  # example-tones' default root lives under the temp directory
    })
    (base / "tmp").mkdir()
    return SimpleNamespace(base=base, target=target, env=run_env)


def _bench(installed: SimpleNamespace, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], env=installed.env, cwd=installed.base,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_bench_ls_lists_the_installed_plugin(installed) -> None:
    proc = _bench(installed, "ls", "--options")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    version = _version()
    for name in COMPONENTS.values():
        row = next(line for line in lines if line.split()[:1] == [name])
        assert row.split()[1:] == [DIST, version, "[example]"]
    assert "      example-mfcc.hidden = 128" in lines
    assert "      example-tones.root = ''" in lines
    assert "failed plugins:" not in proc.stdout
    assert "ntxent" in proc.stdout, "built-ins are still listed"
    # The output shown on the page is what `bench ls` prints.
    shown = next(body for lang, body, before in _blocks(DOC.read_text()) if lang == "text" and "example-mfcc" in body)
    for line in shown.splitlines():
        assert line in lines


@pytest.mark.slow
def test_autoload_off_hides_the_plugin_but_not_builtins(installed) -> None:
    env = {**installed.env, "BENCH_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = subprocess.run([sys.executable, "-m", "bench", "ls"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "example-" not in proc.stdout
    assert "ntxent" in proc.stdout and "cnn" in proc.stdout


@pytest.mark.slow
def test_notebook_snippet_from_the_page_runs(installed) -> None:
    snippet = next(body for lang, body, before in _blocks(DOC.read_text())
                   if lang == "python" and "bench.load(" in body and "Save this as" not in before)
    check = (
        "\nimport math\n"
        "assert type(loss).__name__ == 'SigmoidLoss' and abs(loss.log_scale.exp().item() - 5.0) < 1e-5\n"
        "from bench.core.registry import get_registry\n"
        "entry = get_registry().get('loss', 'example-sigmoid')\n"
        f"assert (entry.distribution, entry.version) == ({DIST!r}, {_version()!r})\n"
        "try:\n"
        "    bench.load('loss', 'example-sigmoid', scal=1.0)\n"
        "except Exception as exc:\n"
        "    print('ERR', type(exc).__name__, exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", snippet + check], env=installed.env, cwd=installed.base,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    first, err = proc.stdout.splitlines()[:2]
    assert first.startswith("16 tone00 a ")
    assert err.startswith("ERR ConfigError unknown option example-sigmoid.scal")
    assert "example-sigmoid.scale" in err and "Valid keys: bias, learnable, scale" in err
    assert (installed.base / "tmp" / "bench-example-tones" / "train" / "tone00.wav").is_file()


@pytest.mark.slow
def test_end_to_end_run_with_the_command_from_the_page(installed) -> None:
    command = next(line for lang, body, _ in _blocks(DOC.read_text()) if lang == "bash"
                   for line in body.splitlines() if line.startswith("bench run "))
    args = command.split()[1:]
    results, runs = installed.base / "results", installed.base / "runs"
    args += ["--results-dir", str(results), "--runs-dir", str(runs), "--num-workers", "0",
             "--set", "train.eval_batch_size=8", "--set", f"example-tones.root={installed.base / 'tones'}",
             "--no-leaderboard"]
    proc = _bench(installed, *args, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = list(results.glob("*.json"))
    assert len(files) == 1
    result = json.loads(files[0].read_text())
    for direction in ("t2a", "a2t"):
        for key in ("R@1", "R@5", "R@10", "mAP@10"):
            assert 0.0 <= result["metrics"][direction][key] <= 1.0
    assert result["dataset"]["splits"]["test"]["n_audios"] == 8
    assert result["dataset"]["splits"]["test"]["n_captions"] == 16
    assert result["audio_encoder"]["name"] == "example-mfcc"
    assert result["audio_encoder"]["options"]["hidden"] == 64, "--set from the page reached the factory"
    assert result["loss"]["options"] == {"scale": 10.0, "bias": -10.0, "learnable": True}
    assert len(result["history"]) == 1 and math.isfinite(result["history"][0]["train_loss"])
    plugins = result["provenance"]["plugins"]
    for kind, name in COMPONENTS.items():
        assert plugins[kind] == {"name": name, "plugin": "example", "distribution": DIST, "version": _version()}
    assert plugins["text_encoder"]["distribution"] == "bench"
    assert not list(results.glob(".*.tmp")), "result written atomically"
