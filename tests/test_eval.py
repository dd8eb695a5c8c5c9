"""`bench eval`: registered models (a fake one here, a tiny random CLAP in the slow tests) and finished runs."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import bench
from bench.core.registry import Registry
from bench.errors import ConfigError
from bench.evaluation.embedding_cache import EmbeddingCache
from bench.runs.eval_run import Target, evaluate_target

TINY_SYNTHETIC = {"synthetic": {"n_train": 4, "n_val": 4, "n_test": 6}}
CALLS = {"audio": 0, "text": 0}
SEEN_LENGTHS: list[int] = []


class FakeModel:
    """Embeds a clip by its length and a caption by its characters; ``mode`` breaks the contract on purpose."""

    stochastic = False
    fingerprint = "fake-v1"

    def __init__(self, mode: str = "ok", rate: int = 8000) -> None:
        self.mode = mode
        self.sample_rate = rate
        self.stochastic = mode == "stochastic"

    def embed_audio(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        CALLS["audio"] += 1
        SEEN_LENGTHS.extend(int(n) for n in lengths)
        out = torch.stack([lengths.float(), waveforms.abs().sum(1), torch.ones(len(lengths))], dim=1)
        if self.mode == "nan":
            out[0, 0] = float("nan")
        if self.mode == "rows":
            out = out[:-1]
        if self.mode == "dims":
            out = out[:, :2]
        return torch.nn.functional.normalize(out, dim=1)

    def embed_text(self, captions: list[str]) -> torch.Tensor:
        CALLS["text"] += 1
        out = torch.tensor([[len(c), sum(map(ord, c)) % 97, 1.0] for c in captions])
        return torch.nn.functional.normalize(out, dim=1)


def _fake_plugin() -> types.ModuleType:
    module = types.ModuleType("fake_model_plugin")

    @bench.hookimpl
    def register_models(register):  # noqa: ANN001
        register("fake", lambda mode="ok", rate=8000: FakeModel(mode, rate))

    module.register_models = register_models
    return module


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("eval-cache")  # the tiny synthetic dataset is generated once


@pytest.fixture()
def registry(shared_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    # One generated dataset and validation manifest for all tests; each test its own embedding cache (_eval).
    monkeypatch.setenv("BENCH_CACHE", str(shared_cache))
    reg = Registry()
    reg.load_entry_points(autoload=False)
    reg.register_module(_fake_plugin(), "fake", distribution="bench-fake", version="9.9")
    return reg


def _eval(registry: Registry, tmp_path: Path, mode: str = "ok", seed: int = 0, **kwargs) -> list[dict]:
    options = {"mode": mode} if mode != "ok" else {}
    return evaluate_target(Target(model="fake", options=options), "synthetic", TINY_SYNTHETIC,
                           protocols=kwargs.pop("protocols", ["bench"]), seed=seed, batch_size=4, num_workers=0,
                           device="cpu", results_dir=tmp_path / "results", runs_dir=tmp_path / "runs",
                           force=kwargs.pop("force", False), registry=registry,
                           cache=EmbeddingCache(tmp_path / "embeddings"))


def test_fake_model_scored_resampled_and_cached(registry: Registry, tmp_path: Path) -> None:
    SEEN_LENGTHS.clear()
    first = _eval(registry, tmp_path, protocols=["bench", "dcase"])
    assert [r["protocol"] for r in first] == ["bench", "dcase"]
    result = first[0]
    assert result["kind"] == "eval" and result["eval"]["zero_shot"] is True and result["eval"]["trained_on"] is None
    assert result["dataset"]["splits"]["test"]["n_audios"] == 6
    assert result["provenance"]["plugins"]["model"]["distribution"] == "bench-fake"
    assert result["timings"]["cache_misses"] == 2
    # The bench-protocol result carries a per-query sidecar that reduces to its metrics; the
    # dcase one does not (its queries are not bench's).
    from bench.evaluation.per_query import load_for_result, reduce

    json_path = tmp_path / "results" / f"{result['run_id']}.json"
    assert reduce(load_for_result(result, json_path)) == result["metrics"]
    assert "per_query" not in first[1]
    # The harness resampled the 16 kHz files to the model's 8 kHz.
    root = Path(registry.build("dataset", "synthetic", TINY_SYNTHETIC["synthetic"]).root)
    files = sorted(root.rglob("*.wav"))
    test_frames = {sf.info(str(f)).frames for f in files}
    assert all(abs(n * 2 - min(test_frames, key=lambda f: abs(f - 2 * n))) <= 2 for n in SEEN_LENGTHS)
    # Scored again (forced): nothing is encoded, every embedding comes from the cache.
    calls = dict(CALLS)
    again = _eval(registry, tmp_path, force=True)[0]
    assert CALLS == calls
    assert again["timings"]["cache_misses"] == 0 and again["timings"]["cache_hits"] == 2
    assert again["metrics"] == result["metrics"]
    # Not forced: the existing result is returned, nothing is written.
    before = sorted((tmp_path / "results").glob("*.json"))
    assert _eval(registry, tmp_path)[0]["run_id"] in {p.stem for p in before}
    assert sorted((tmp_path / "results").glob("*.json")) == before


def test_eval_result_keeps_its_embeddings_for_verify_inspect_and_fuse(registry: Registry, tmp_path: Path) -> None:
    from bench.results.fusion import fuse_runs
    from bench.results.inspect_run import worst_queries
    from bench.results.verify import verify

    bench_result, laion_result = _eval(registry, tmp_path, protocols=["bench", "laion-clap"])
    stored = Path(bench_result["artifacts"]["test_embeddings"])
    assert stored.is_file() and stored.parent == tmp_path / "runs" / bench_result["run_id"]
    assert "artifacts" not in laion_result  # bench's metrics would not reproduce another protocol's
    json_path = tmp_path / "results" / f"{bench_result['run_id']}.json"
    checked = verify(json_path)
    assert checked.ok and checked.checked == ("embeddings", "chance", "sidecar"), checked.message
    assert len(worst_queries(stored, n=3)) == 3
    # A zero-shot score fuses like a trained run: with itself, combsum changes no ranking.
    fused = fuse_runs([bench_result["run_id"], bench_result["run_id"]], method="combsum",
                      results_dir=tmp_path / "results")
    assert fused["metrics"] == bench_result["metrics"]
    # The directory holds no config.json or best.pt: never offered or loaded as a trained run.
    from bench.model.run_model import run_directory

    with pytest.raises(ConfigError, match="no finished run"):
        run_directory(bench_result["run_id"], tmp_path / "runs")


@pytest.mark.parametrize(("mode", "encoded_again"), [("ok", 0), ("stochastic", 2)])
def test_seed_is_part_of_the_cache_key_only_for_stochastic_models(registry: Registry, tmp_path: Path, mode: str,
                                                                  encoded_again: int) -> None:
    first = _eval(registry, tmp_path, mode=mode, seed=0)[0]
    other = _eval(registry, tmp_path, mode=mode, seed=1)[0]
    assert first["seed"] == 0 and other["seed"] == 1 and first["run_id"] != other["run_id"]
    assert other["timings"]["cache_misses"] == encoded_again


@pytest.mark.parametrize(("mode", "message"), [
    ("nan", "embed_audio returned NaN/inf values"),
    ("rows", r"embed_audio returned shape \(3, 3\), expected \[4, D\]"),
    ("dims", "embed_audio gives 2-d and embed_text 3-d embeddings"),
])
def test_broken_model_is_one_line_naming_it(registry: Registry, tmp_path: Path, mode: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"model 'fake': {message}"):
        _eval(registry, tmp_path, mode=mode)


def _fake_run(runs: Path, run_id: str, audio_encoder: str = "cnn", plugins: dict | None = None) -> Path:
    directory = runs / run_id
    directory.mkdir(parents=True)
    config = {"dataset": {"name": "synthetic"}, "audio_encoder": {"name": audio_encoder},
              "text_encoder": {"name": "minilm"}, "loss": {"name": "ntxent"}, "seed": 0, "train": {}}
    (directory / "config.json").write_text(json.dumps({"config": config}))
    (directory / "best.pt").write_bytes(b"")
    if plugins is not None:
        (directory / "result.json").write_text(json.dumps({"provenance": {"plugins": plugins}}))
    return directory


def test_unknown_run_id_did_you_mean(tmp_path: Path) -> None:
    from bench.model.run_model import load_run_model

    _fake_run(tmp_path, "20260101-000000-synthetic-cnn-minilm-ntxent-s0-abcdef")
    with pytest.raises(ConfigError, match="did you mean '20260101-000000-synthetic-cnn-minilm-ntxent-s0-abcdef'"):
        load_run_model("20260101-000000-synthetic-cnn-minilm-ntxent-s1-abcdef", tmp_path, Registry())


def test_run_with_missing_plugin_names_the_distribution(tmp_path: Path) -> None:
    from bench.model.run_model import load_run_model

    registry = Registry()
    registry.load_entry_points(autoload=False)
    plugins = {"audio_encoder": {"name": "beats", "plugin": "beats", "distribution": "bench-beats", "version": "1.2"}}
    _fake_run(tmp_path, "r1", audio_encoder="beats", plugins=plugins)
    with pytest.raises(ConfigError, match=r"audio encoder 'beats' from plugin distribution bench-beats 1\.2.*pip"):
        load_run_model("r1", tmp_path, registry)


def test_offline_clap_fails_before_any_data_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    from bench.cli.main import main
    from bench_plugins.models._clap_location import hub_cache_dir

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["eval", "--model", "clap", "--set", "clap.model=nobody/clap-missing", "--dataset", "synthetic",
                 "--results-dir", str(tmp_path / "results")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "'nobody/clap-missing'" in err and str(hub_cache_dir()) in err and "--set clap.model=" in err
    assert not (tmp_path / "cache" / "synthetic").exists()  # failed before generating the dataset


# -- slow: the whole path through a tiny random CLAP, and a finished run on another dataset ------------------
@pytest.mark.slow
def test_clap_eval_equals_direct_clap_features(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clap_tiny import save_tiny_clap
    from transformers import ClapModel, ClapProcessor

    from bench.cli.main import main
    from bench.data.audio import load_audio
    from bench.data.loading import SplitData
    from bench.evaluation.metrics import retrieval_metrics
    from bench.results.files import read_results

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    model_dir = save_tiny_clap(tmp_path / "tiny-clap")
    argv = ["eval", "--model", "clap", "--set", f"clap.model={model_dir}", "--dataset", "synthetic",
            "--set", "synthetic.n_train=4", "--set", "synthetic.n_val=4", "--set", "synthetic.n_test=8",
            "--batch-size", "4", "--results-dir", str(tmp_path / "results"), "--no-leaderboard"]
    assert main(argv) == 0
    (result,) = read_results(tmp_path / "results")
    assert result["eval"]["model"]["truncation"] == "rand_trunc" and result["eval"]["model"]["sample_rate"] == 48000

    processor, clap = ClapProcessor.from_pretrained(model_dir), ClapModel.from_pretrained(model_dir).eval()
    registry = Registry()
    registry.load_entry_points(autoload=False)
    test = SplitData.from_items("test", registry.build("dataset", "synthetic", {"n_train": 4, "n_val": 4,
                                                                               "n_test": 8}).split("test"))
    clips = [load_audio(item.audio_path, 48000, max_seconds=30.0) for item in test.items]
    with torch.no_grad():
        audio = torch.cat([clap.get_audio_features(**processor.feature_extractor(
            clips[i:i + 4], sampling_rate=48000, return_tensors="pt")).pooler_output for i in range(0, 8, 4)])
        text = torch.cat([clap.get_text_features(**processor.tokenizer(
            test.captions[i:i + 4], padding=True, truncation=True, max_length=128, return_tensors="pt")).pooler_output
            for i in range(0, len(test.captions), 4)])
    assert result["metrics"] == retrieval_metrics(audio, text, test.audio_of_caption)

    assert main([*argv, "--force"]) == 0  # the second time every embedding comes from the cache
    second = max(read_results(tmp_path / "results"), key=lambda r: r["run_id"])
    assert second["timings"]["cache_misses"] == 0 and second["metrics"] == result["metrics"]


@pytest.mark.slow
def test_finished_run_scored_on_a_csv_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.cli.main import main
    from bench.results.files import read_results

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    runs, results = tmp_path / "runs", tmp_path / "results"
    assert main(["run", "--set", "synthetic.n_train=24", "--set", "synthetic.n_val=8", "--set", "synthetic.n_test=8",
                 "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--no-leaderboard",
                 "--runs-dir", str(runs), "--results-dir", str(results)]) == 0
    (trained,) = read_results(results)
    # A CSV dataset at 44.1 kHz: the run's encoder is fed at its own rate.
    audio_dir = tmp_path / "csv"
    audio_dir.mkdir()
    rows = ["file_name,caption,split"]
    rng = np.random.default_rng(0)
    for index, split in enumerate(["train", "val", "test", "test", "test"]):
        sf.write(audio_dir / f"clip{index}.wav", (rng.standard_normal(44100) * 0.1).astype(np.float32), 44100)
        rows += [f"clip{index}.wav,a noise number {index},{split}", f"clip{index}.wav,static hiss {index},{split}"]
    (audio_dir / "captions.csv").write_text("\n".join(rows) + "\n")
    assert main(["eval", trained["run_id"], "--dataset", "csv", "--set", f"csv.root={audio_dir}",
                 "--runs-dir", str(runs), "--results-dir", str(results), "--no-leaderboard"]) == 0
    (scored,) = [r for r in read_results(results) if r.get("kind") == "eval"]
    assert scored["eval"] | {"model": None} == {"zero_shot": False, "trained_on": "synthetic",
                                                 "run_id": trained["run_id"], "model": None}
    assert scored["dataset"]["splits"]["test"]["n_audios"] == 3 and scored["audio_encoder"]["name"] == "cnn"
    assert 0 <= scored["metrics"]["t2a"]["mAP@10"] <= 1


@pytest.mark.slow
def test_fused_clap_embeds_each_clip_independently_of_its_batch(tmp_path: Path) -> None:
    from clap_tiny import save_tiny_clap

    from bench_plugins.models.clap import build_clap

    model = build_clap(model=str(save_tiny_clap(tmp_path / "fused", truncation="fusion", fusion=True)))
    assert model.describe()["enable_fusion"] and model.truncation == "fusion"
    waves = torch.randn(2, 48000 * 14, generator=torch.Generator().manual_seed(0)) * 0.1
    lengths = torch.tensor([48000 * 2, 48000 * 14])  # a short clip next to one longer than the 10 s window
    np.random.seed(0)
    together = model.embed_audio(waves, lengths)
    alone = model.embed_audio(waves[:1, : 48000 * 2], lengths[:1])
    # transformers' extractor would flag a random clip of an all-short batch as longer; bench passes true flags.
    assert model.audio_inputs(waves[:1, : 48000 * 2], lengths[:1])["is_longer"].tolist() == [[False]]
    assert torch.allclose(together[0], alone[0], atol=1e-5) and torch.isfinite(together).all()
