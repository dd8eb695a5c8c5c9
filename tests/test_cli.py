"""The command line's handling of user mistakes: exit status 2, one line, no traceback; help and presets.

Commands run in-process through ``bench.cli.main.main``. Where a test only needs to see what ``bench run``
would train, ``bench.runs.grid.run_grid`` is replaced by a recorder, so nothing is trained.
"""

from __future__ import annotations

import contextlib
import io
import logging

import pytest

from bench.cli.main import main
from bench.core import config as config_mod


def error_line(err: str, command: str = "run") -> str:
    """The one error line of a failed command; also checks that there is exactly one and no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"bench {command}: error:")]
    assert len(lines) == 1, err
    return lines[0]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if `bench run` gets as far as training."""
    import bench.runs.grid

    def refuse(configs, *, force=False, registry=None):
        raise AssertionError("bench run reached run_grid: the error should have been raised before any work")

    monkeypatch.setattr(bench.runs.grid, "run_grid", refuse)


# -- errors: exit 2, one line -----------------------------------------------------------------------
def test_unknown_encoder_did_you_mean(capsys, no_training):
    code, out, err = run_cli(["run", "--encoder", "cnnn"], capsys)
    assert code == 2
    line = error_line(err)
    assert "did you mean 'cnn'" in line
    assert "passt" in line  # lists what is available
    assert len(err.strip().splitlines()) == 1


def test_unknown_loss_without_near_miss(capsys, no_training):
    code, _, err = run_cli(["run", "--loss", "zzzzzz"], capsys)
    assert code == 2
    line = error_line(err)
    assert "unknown loss 'zzzzzz'" in line and "did you mean" not in line and "ntxent" in line


def test_unknown_set_key_lists_valid_keys(capsys, no_training):
    code, _, err = run_cli(["run", "--set", "cnn.foo=1"], capsys)
    assert code == 2
    line = error_line(err)
    assert "cnn.foo" in line
    for key in ("n_mels", "channels", "embed_dim", "dropout"):
        assert key in line


def test_set_for_component_not_in_run(capsys, no_training):
    code, _, err = run_cli(["run", "--encoder", "cnn", "--set", "passt.pretrained=false"], capsys)
    assert code == 2
    assert "'passt'" in error_line(err)


def test_malformed_set(capsys, no_training):
    code, _, err = run_cli(["run", "--set", "foo"], capsys)
    assert code == 2
    assert "NAME.KEY=VALUE" in error_line(err)


def test_set_value_of_wrong_type(capsys, no_training):
    code, _, err = run_cli(["run", "--set", "cnn.n_mels=abc"], capsys)
    assert code == 2
    assert "cnn.n_mels" in error_line(err)


@pytest.mark.parametrize("seed", ["x", "0,x", "1.5"])
def test_bad_seed(capsys, no_training, seed):
    code, _, err = run_cli(["run", "--seed", seed], capsys)
    assert code == 2
    line = error_line(err)
    assert "--seed" in line and "integer" in line


def test_argparse_type_error_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--epochs", "many"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--epochs" in err and "Traceback" not in err


def test_unknown_preset(capsys, no_training, tmp_path, monkeypatch):
    monkeypatch.setattr(config_mod, "PRESET_DIR", tmp_path)
    code, _, err = run_cli(["run", "--preset", "nope"], capsys)
    assert code == 2
    assert "unknown preset 'nope'" in error_line(err)


def test_resume_unknown_run(capsys, tmp_path):
    code, _, err = run_cli(["run", "--resume", "latest", "--runs-dir", str(tmp_path)], capsys)
    assert code == 2
    assert str(tmp_path) in error_line(err)
    code, _, err = run_cli(["run", "--resume", "no-such-run", "--runs-dir", str(tmp_path)], capsys)
    assert code == 2
    assert "no-such-run" in error_line(err)


# -- what a run would train --------------------------------------------------------------------------
def test_grid_from_flags(capsys, recorded, tmp_path):
    code = main(["run", "--encoder", "cnn", "--loss", "ntxent,triplet", "--seed", "0,1,2", "--epochs", "2",
                 "--set", "ntxent.tau=1", "--set", "train.batch_size=8", "--no-leaderboard",
                 "--results-dir", str(tmp_path / "r"), "--runs-dir", str(tmp_path / "runs")])
    assert code == 0
    (configs,) = recorded
    assert len(configs) == 6
    assert sorted((c.loss.name, c.seed) for c in configs) == [
        (loss, seed) for loss in ("ntxent", "triplet") for seed in (0, 1, 2)]
    ntxent = [c for c in configs if c.loss.name == "ntxent"][0]
    assert ntxent.loss.options == {"tau": 1.0} and type(ntxent.loss.options["tau"]) is float
    assert all(c.train.epochs == 2 and c.train.batch_size == 8 for c in configs)
    assert all(c.runs_dir == tmp_path / "runs" for c in configs)


def test_preset_with_flag_override(capsys, recorded, tmp_path, monkeypatch):
    monkeypatch.setattr(config_mod, "PRESET_DIR", tmp_path)
    (tmp_path / "quick.toml").write_text(
        'description = "quick check"\n'
        '[run]\nencoder = "cnn"\nloss = "triplet"\nepochs = 3\nseed = "4,5"\nwarmup_epochs = 0.5\n'
        '[set]\n"triplet.margin" = 0.3\n"cnn.freeze" = true\n'
    )
    assert main(["run", "--preset", "quick", "--epochs", "1", "--set", "triplet.margin=0.1"]) == 0
    (configs,) = recorded
    assert [c.seed for c in configs] == [4, 5]
    cfg = configs[0]
    assert cfg.preset == "quick"
    assert cfg.loss.name == "triplet" and cfg.loss.options == {"margin": 0.1}  # the flag wins
    assert cfg.audio_encoder.options == {"freeze": True}
    assert cfg.train.epochs == 1 and cfg.train.warmup_epochs == 0.5


def test_preset_dotted_set_keys(capsys, recorded, tmp_path):
    path = tmp_path / "dotted.toml"
    path.write_text('[set]\ncnn.n_mels = 32\n')
    assert main(["run", "--preset", str(path)]) == 0
    (configs,) = recorded
    assert configs[0].audio_encoder.options == {"n_mels": 32}


def test_preset_seed_list(capsys, recorded, tmp_path):
    path = tmp_path / "seeds.toml"
    path.write_text('[run]\nseed = [0, 1]\n')
    assert main(["run", "--preset", str(path)]) == 0
    (configs,) = recorded
    assert [c.seed for c in configs] == [0, 1]


def test_preset_unknown_run_key(capsys, recorded, tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('[run]\nencodr = "cnn"\n')
    code, _, err = run_cli(["run", "--preset", str(path)], capsys)
    assert code == 2
    assert "encodr" in error_line(err)


# -- --device ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cuda_run(tmp_path_factory):
    """`bench run --device cuda` on a tiny synthetic set, for real, once: (exit code, stderr, runs dir)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    root = tmp_path_factory.mktemp("cuda_run")
    err = io.StringIO()
    logger = logging.getLogger("bench")
    before = list(logger.handlers)
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setenv("BENCH_CACHE", str(root / "cache"))
        code = main(["run", "--device", "cuda", "--encoder", "cnn", "--text-encoder", "minilm",
                     "--set", "synthetic.n_train=4", "--set", "synthetic.n_val=2", "--set", "synthetic.n_test=2",
                     "--set", "cnn.channels=4", "--runs-dir", str(root / "runs"),
                     "--results-dir", str(root / "results"), "--no-leaderboard"])
    # The run's console handler points at our buffer; leave the logger as it was for later tests.
    for handler in list(logger.handlers):
        if handler not in before:
            logger.removeHandler(handler)
    return code, err.getvalue(), root / "runs"


def test_device_cuda_without_cuda(cuda_run):
    code, err, _runs = cuda_run
    assert code == 2
    line = error_line(err)
    assert "--device cuda" in line and "CUDA is not available" in line and "--device cpu" in line


def test_device_checked_before_any_work(cuda_run):
    _code, _err, runs = cuda_run
    assert not runs.exists() or not any(runs.iterdir())


def test_bad_device_fails_before_training(capsys, no_training):
    code, _, err = run_cli(["run", "--device", "gpu"], capsys)
    assert code == 2
    assert "--device 'gpu'" in error_line(err)


# -- help, version, presets, ls -----------------------------------------------------------------------
@pytest.mark.parametrize("argv, expected", [(["--help"], "COMMAND"), (["run", "--help"], "--set"),
                                            (["leaderboard", "--help"], "--check")])
def test_help_exits_0(capsys, argv, expected):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert expected in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: bench" in capsys.readouterr().out


def test_version(capsys):
    from bench import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"bench {__version__}"


def test_presets_lists_name_and_description(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(config_mod, "PRESET_DIR", tmp_path)
    (tmp_path / "quick.toml").write_text('description = "a two-epoch smoke test"\n[run]\nepochs = 2\n')
    (tmp_path / "full.toml").write_text('description = "the reference recipe"\n')
    (tmp_path / "notes.txt").write_text("not a preset")
    code, out, _ = run_cli(["presets"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].split(None, 1) == ["full", "the reference recipe"]
    assert lines[1].split(None, 1) == ["quick", "a two-epoch smoke test"]


def test_presets_bad_file_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(config_mod, "PRESET_DIR", tmp_path)
    (tmp_path / "broken.toml").write_text("[run\n")
    code, _, err = run_cli(["presets"], capsys)
    assert code == 2
    assert "broken.toml" in error_line(err, "presets")


def test_builtin_presets_load(capsys):
    # Whatever presets ship with bench must parse and be listed.
    code, out, err = run_cli(["presets"], capsys)
    assert code == 0 and err == ""
    assert len(out.strip().splitlines()) == len(config_mod.available_presets())


def test_ls_lists_builtins(capsys):
    code, out, _ = run_cli(["ls", "--options"], capsys)
    assert code == 0
    for text in ("audio encoders:", "losses:", "datasets:", "cnn", "ntxent", "synthetic", "cnn.n_mels = 64"):
        assert text in out
