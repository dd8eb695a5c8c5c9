"""Fail fast and all at once (issue 17, item 3): bench.core.preflight checks a whole request before torch.

Every problem of a request is reported in one list, one line each, exit status 2, and nothing is
written: no run directory, no result.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from bench import hookimpl
from bench.cli.main import main
from bench.core.preflight import PreflightError, component_problems, request_problems
from bench.core.registry import Registry, get_registry
from bench_plugins.datasets._preflight import preflight_clotho, preflight_csv
from bench_plugins.encoders.passt import preflight_passt
from bench_plugins.encoders.text import preflight_hf


@pytest.fixture
def offline_caches(monkeypatch, tmp_path):
    """Empty weight and model caches, offline: what a fresh machine without network has."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path


def run_cli(capsys, *argv: str) -> tuple[int, list[str]]:
    code = main(["run", *argv, "--no-leaderboard"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.strip().splitlines()


def test_salsa_preset_reports_all_three_problems_at_once(offline_caches, capsys):
    runs = offline_caches / "runs"
    code, lines = run_cli(capsys, "--preset", "salsa-clotho", "--set", "clotho.root=/nonexistent",
                          "--runs-dir", str(runs), "--results-dir", str(runs / "results"))
    assert code == 2
    assert lines[0] == "bench run: error: 3 problems in this configuration, nothing was started:"
    assert lines[1].startswith("  - clotho: dataset directory /nonexistent does not exist")
    assert lines[2].startswith("  - passt: pretrained weights") and str(offline_caches / "torch") in lines[2]
    assert lines[3].startswith("  - hf: text encoder model 'roberta-large' is not available locally")
    assert not runs.exists()


def test_epochs_zero_and_negative_fail_before_anything_is_written(offline_caches, capsys):
    runs = offline_caches / "runs"
    for epochs in ("0", "-1"):
        code, lines = run_cli(capsys, "--epochs", epochs, "--runs-dir", str(runs), "--results-dir", str(runs / "r"))
        assert code == 2 and lines == [f"bench run: error: --epochs {epochs}: expected an int >= 1"]
    assert not runs.exists()


def test_names_options_and_train_settings_in_one_list(offline_caches, capsys):
    code, lines = run_cli(capsys, "--encoder", "cnnn", "--loss", "triplet", "--set", "triplet.negatives=hardest",
                          "--set", "train.keep=some", "--set", "train.epochz=3", "--set", "minilm.max_length=1",
                          "--runs-dir", str(offline_caches / "runs"))
    assert code == 2 and lines[0].endswith("5 problems in this configuration, nothing was started:")
    text = "\n".join(lines)
    for fragment in ("train.keep='some'", "unknown option train.epochz", "did you mean 'cnn'",
                     "triplet.negatives='hardest'", "minilm.max_length='1'"):
        assert fragment in text, fragment


def test_a_sound_request_has_no_problems(offline_caches):
    problems = request_problems(get_registry(), datasets=["synthetic"], encoders=["cnn"], text_encoders=["minilm"],
                                losses=["ntxent", "triplet"], set_options={"train": {"epochs": 1}},
                                train_overrides={}, loggers=[])
    assert problems == []


def test_init_names_a_missing_checkpoint(offline_caches):
    problems = request_problems(get_registry(), datasets=["synthetic"], encoders=["cnn"], text_encoders=["minilm"],
                                losses=["ntxent"], set_options={}, train_overrides={}, runs_dir=offline_caches,
                                init="nope")
    assert problems == [f"--init nope: {offline_caches / 'nope' / 'best.pt'} does not exist; "
                        f"pass a finished run under --runs-dir"]


def test_one_problem_is_one_line():
    assert str(PreflightError(["clotho: no root"])) == "clotho: no root"


# -- the plugins' own checks ---------------------------------------------------------------------------
def test_clotho_names_each_missing_file(tmp_path):
    (tmp_path / "development").mkdir()
    (tmp_path / "clotho_captions_development.csv").write_text("file_name\n")
    problems = preflight_clotho(root=str(tmp_path))
    assert len(problems) == 4  # two captions CSVs and two audio folders
    assert any("clotho_captions_evaluation.csv not found" in p for p in problems)
    assert any(p.startswith(f"clotho: {tmp_path / 'validation'} not found (audio folder)") for p in problems)


def test_clotho_root_from_bench_data(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    assert preflight_clotho() == [f"clotho: dataset directory {tmp_path / 'clotho'} does not exist; "
                                  f"pass --set clotho.root=DIR or set BENCH_DATA"]


def test_csv_needs_its_captions_file(tmp_path):
    assert preflight_csv(root=str(tmp_path))[0].startswith(f"csv: captions file {tmp_path / 'captions.csv'} not found")
    (tmp_path / "captions.csv").write_text("file_name,caption,split\n")
    assert preflight_csv(root=str(tmp_path)) == []
    assert preflight_csv(root="") == ["csv: dataset directory not set; pass --set csv.root=DIR"]


def test_passt_checks_the_weights_file_without_torch(offline_caches, tmp_path):
    assert "not found at" in " ".join(preflight_passt())
    assert any("checkpoint file /no/such.pt does not exist" in p for p in preflight_passt(checkpoint="/no/such.pt"))
    weights = tmp_path / "torch" / "hub" / "checkpoints" / "passt-s-f128-p16-s16-ap.468.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"x")
    assert not any("weights" in p for p in preflight_passt())
    assert preflight_passt(arch="passt_huge")[0].startswith("passt: unknown arch 'passt_huge'")


def test_hf_model_in_the_cache_or_a_directory(offline_caches, tmp_path):
    assert preflight_hf("org/model")[0].startswith("text encoder model 'org/model' is not available locally")
    snapshot = tmp_path / "hf" / "hub" / "models--org--model" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    assert preflight_hf("org/model") == []
    assert preflight_hf(str(tmp_path))[0].endswith("has no config.json; is it a transformers model?")


def test_third_party_factory_preflight_is_called_with_resolved_options():
    seen = []

    def build_thing(root: str = "/x", size: int = 3):
        raise AssertionError("preflight must not build")

    def check(root: str, size: int):
        seen.append((root, size))
        return [f"root {root} is missing", "size too small"] if size < 5 else []

    build_thing.preflight = check

    @hookimpl
    def register_audio_encoders(register):
        register("thing", build_thing)

    registry = Registry()
    registry.register_module(types.SimpleNamespace(register_audio_encoders=register_audio_encoders,
                                                   __name__="third"), "third")
    assert component_problems(registry, "audio_encoder", "thing", {"size": "4"}) == [
        "thing: root /x is missing", "thing: size too small"]
    assert seen == [("/x", 4)]  # defaults filled in, the value coerced by the annotation
    assert component_problems(registry, "audio_encoder", "thing", {"size": 9}) == []


@pytest.mark.slow
def test_time_to_error_of_the_salsa_preset_without_torch(tmp_path):
    """The measured number of issue 17: a missing dataset root fails in well under 5 s, torch unimported."""
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_OFFLINE": "1", "BENCH_CACHE": str(tmp_path / "cache")}
    script = ("import sys; from bench.cli.main import main; "
              "code = main(['run', '--preset', 'salsa-clotho', '--set', 'clotho.root=/nonexistent', "
              f"'--runs-dir', {str(tmp_path / 'runs')!r}]); "
              "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(code)")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 2, proc.stderr
    assert "3 problems" in proc.stderr and "torch was imported" not in proc.stderr
    assert elapsed < 5.0, elapsed
    assert not Path(tmp_path / "runs").exists()


def test_missing_package_finds_without_importing_and_says_how_to_install() -> None:
    from bench.core.preflight import missing_package

    assert missing_package("json", "json") == []
    assert missing_package("no_such_module_for_bench", "'bench[extra]'") == [
        "needs the no_such_module_for_bench package: pip install 'bench[extra]'"]
