"""The two-stage distillation through the command line (``bench run --loss distill``, ``--teachers``, ``--init``).

Loss formulas are pinned by tests/test_losses.py; these tests check the orchestration in
bench/runs/distill.py: stage 1 is trained (or reused) before stage 2, stage 2 records its teachers and
initialisation, and the student really starts from the chosen run's weights.

Every run is tiny (8 training clips, one caption per clip per epoch, a two-block CNN, 16-d
projections, one epoch) and runs in-process through ``bench.cli.main.main``; all tests of this module
share one runs/results directory so that stage-1 runs are trained once. Where a test needs to
know that nothing was learned it sets both learning rates to 0: AdamW with lr 0 leaves every
parameter bit-identical, so the student's best.pt equals the weights it started from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from bench.cli.main import main
from bench.leaderboard import tables as leaderboard
from bench.results.files import read_results

pytestmark = pytest.mark.slow  # every test here trains a model or starts a process

TINY = [
    "--set", "synthetic.n_train=8", "--set", "synthetic.n_val=4", "--set", "synthetic.n_test=12",
    "--set", "cnn.channels=8,8", "--set", "cnn.n_mels=16", "--set", "cnn.embed_dim=16", "--set", "cnn.crop_seconds=2",
    "--set", "train.captions_per_audio=1",
    "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--proj-dim", "16", "--no-leaderboard",
]
FROZEN = ["--set", "train.lr=0", "--set", "train.head_lr=0"]


class Bench:
    """``bench run`` in-process on the module's shared directories."""

    def __init__(self, base: Path) -> None:
        self.results = base / "results"
        self.runs = base / "runs"

    def run(self, *args: str) -> int:
        return main(["run", *TINY, "--results-dir", str(self.results), "--runs-dir", str(self.runs), *args])

    def run_new(self, *args: str) -> list[dict[str, Any]]:
        """Run and return the results it added (in run-id order)."""
        before = {r["run_id"] for r in self.all()}
        assert self.run(*args) == 0
        return [r for r in self.all() if r["run_id"] not in before]

    def all(self) -> list[dict[str, Any]]:
        return read_results(self.results)

    def by_id(self, run_id: str) -> dict[str, Any]:
        (result,) = [r for r in self.all() if r["run_id"] == run_id]
        return result

    def params(self, run_id: str) -> dict[str, torch.Tensor]:
        """The learnable tensors of a run's best checkpoint (batch-norm running statistics move even at lr 0)."""
        state = torch.load(self.runs / run_id / "best.pt", map_location="cpu", weights_only=True)["model"]
        return {k: v for k, v in state.items() if "running_" not in k and "num_batches_tracked" not in k}


def same_params(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    assert a.keys() == b.keys()
    return all(torch.equal(a[k], b[k]) for k in a)


def error_line(err: str) -> str:
    """The single one-line error of a failed ``bench run``; no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("bench run: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    # One cache for the whole session (shared with the other test files): synthetic audio and
    # MiniLM caption embeddings are computed once.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_CACHE", str(tmp_path_factory.getbasetemp() / "bench-cache"))
        yield Bench(tmp_path_factory.mktemp("distill"))


@pytest.fixture(scope="module")
def self_distilled(bench: Bench) -> dict[str, Any]:
    """``bench run --loss distill`` without --teachers, on empty directories."""
    added = bench.run_new("--loss", "distill")
    return {"added": added, "board": leaderboard.render(bench.all())}


@pytest.fixture(scope="module")
def seeds(bench: Bench, self_distilled: dict[str, Any]) -> dict[int, str]:
    """Finished ntxent runs of seeds 0, 1, 2 (seed 0 is the stage-1 run of ``self_distilled``)."""
    bench.run_new("--loss", "ntxent", "--seed", "0,1,2")
    plain = [r for r in bench.all() if r["loss"]["name"] == "ntxent" and r["training"]["lr"] > 0
             and r["audio_encoder"]["options"]["embed_dim"] == 16]
    by_seed = {r["seed"]: r["run_id"] for r in plain}
    assert sorted(by_seed) == [0, 1, 2] and len(plain) == 3
    return by_seed


@pytest.fixture(scope="module")
def other_encoder(bench: Bench) -> str:
    """A finished ntxent run whose audio encoder differs from the student's (cnn.embed_dim=8)."""
    (result,) = bench.run_new("--loss", "ntxent", "--set", "cnn.embed_dim=8")
    return result["run_id"]


# -- stage 1 then stage 2 --------------------------------------------------------------------------
def test_distill_without_teachers_trains_stage_one_then_stage_two(self_distilled: dict[str, Any]) -> None:
    added = self_distilled["added"]
    assert len(added) == 2
    teacher, student = sorted(added, key=lambda r: r["loss"]["name"] == "distill")
    assert teacher["loss"]["name"] == "ntxent"
    assert teacher["stage"]["role"] == "teacher" and teacher["stage"]["stage"] == 1
    # The stage-1 run shares the student's tau (distill's default 0.05 here).
    assert teacher["loss"]["options"]["tau"] == student["loss"]["options"]["tau"]
    assert student["loss"]["name"] == "distill"
    assert student["stage"]["stage"] == 2
    assert student["stage"]["M"] == 1
    assert student["stage"]["teachers"] == [teacher["run_id"]]
    assert student["stage"]["init"] == teacher["run_id"]
    # Stage 1 finished (with its test embeddings) before stage 2 was created.
    assert teacher["run_id"] < student["run_id"]


def test_distill_again_is_skipped(bench: Bench, self_distilled: dict[str, Any]) -> None:
    results_before = sorted(p.name for p in bench.results.iterdir())
    runs_before = sorted(p.name for p in bench.runs.iterdir())
    assert bench.run("--loss", "distill") == 0
    assert sorted(p.name for p in bench.results.iterdir()) == results_before
    assert sorted(p.name for p in bench.runs.iterdir()) == runs_before


def test_leaderboard_labels_both_stages(self_distilled: dict[str, Any]) -> None:
    rows = [line for line in self_distilled["board"].splitlines() if line.startswith("| cnn")]
    labels = sorted(line.split("|")[3].strip() for line in rows)
    assert labels == ["distill (M=1)", "ntxent [stage 1]"]


def test_stage_one_reuses_a_finished_ntxent_run(bench: Bench, seeds: dict[int, str]) -> None:
    # Stage 1 of seed 1 is the finished plain ntxent run of seed 1: only stage 2 is trained.
    (student,) = bench.run_new("--loss", "distill", "--seed", "1")
    assert student["stage"]["teachers"] == [seeds[1]] and student["stage"]["init"] == seeds[1]


# -- --teachers and --init -------------------------------------------------------------------------
def test_ensemble_of_three_seeds_starts_from_the_teacher_of_its_own_seed(bench: Bench, seeds: dict[int, str]) -> None:
    # Teachers in the order seed 1, 0, 2: the student (seed 0) starts from the seed-0 teacher, not
    # the first one listed, so that students of different seeds start from different models.
    order = [seeds[1], seeds[0], seeds[2]]
    (student,) = bench.run_new("--loss", "distill", "--teachers", ",".join(order), *FROZEN)
    assert student["stage"] == {"stage": 2, "M": 3, "teachers": order, "init": seeds[0], "role": None}
    (fresh,) = bench.run_new("--loss", "ntxent", *FROZEN)  # the seed-0 random init, untouched
    learned = bench.params(student["run_id"])
    assert same_params(learned, bench.params(seeds[0]))
    assert not same_params(learned, bench.params(seeds[1]))
    assert not same_params(learned, bench.params(fresh["run_id"]))
    # Each teacher got its own store of the (same) training split.
    stores = [sorted(p.name for p in (bench.runs / run_id / "teacher_store").iterdir()) for run_id in order]
    assert stores[0] == stores[1] == stores[2] and len(stores[0]) == 1


def test_student_starts_from_the_teacher_with_its_encoders(bench: Bench, seeds: dict[int, str],
                                                           other_encoder: str) -> None:
    # No teacher has the student's seed (0) and encoders: the one with its encoders (seed 2) is the start.
    order = [other_encoder, seeds[2]]
    (student,) = bench.run_new("--loss", "distill", "--teachers", ",".join(order), *FROZEN)
    assert student["stage"]["M"] == 2 and student["stage"]["teachers"] == order
    assert student["stage"]["init"] == seeds[2]
    assert same_params(bench.params(student["run_id"]), bench.params(seeds[2]))


def test_teacher_with_other_encoders_needs_init(bench: Bench, other_encoder: str, capsys) -> None:
    runs_before = sorted(p.name for p in bench.runs.iterdir())
    assert bench.run("--loss", "distill", "--teachers", other_encoder) == 2
    line = error_line(capsys.readouterr().err)
    assert "--init" in line and "encoders" in line
    assert sorted(p.name for p in bench.runs.iterdir()) == runs_before  # refused before any work


def test_init_gives_the_student_that_runs_weights(bench: Bench, other_encoder: str, seeds: dict[int, str]) -> None:
    # Each --init is its own experiment (not "already done" as the other), starting from that run's weights.
    for init in (seeds[1], seeds[0]):
        (student,) = bench.run_new("--loss", "distill", "--teachers", other_encoder, "--init", init, *FROZEN)
        assert student["stage"]["M"] == 1
        assert student["stage"]["teachers"] == [other_encoder]
        assert student["stage"]["init"] == init
        assert same_params(bench.params(student["run_id"]), bench.params(init))
    # The teacher's store holds its own projections of the student's training split.
    (store,) = (bench.runs / other_encoder / "teacher_store").iterdir()
    assert (store / "meta.json").is_file()


def test_unknown_teacher_is_one_line_exit_2(bench: Bench, self_distilled: dict[str, Any], capsys) -> None:
    assert bench.run("--loss", "distill", "--teachers", "no-such-run") == 2
    line = error_line(capsys.readouterr().err)
    assert "no-such-run" in line and "--runs-dir" in line


def test_unknown_init_is_one_line_exit_2(bench: Bench, other_encoder: str, capsys) -> None:
    assert bench.run("--loss", "distill", "--teachers", other_encoder, "--init", "no-such-run") == 2
    line = error_line(capsys.readouterr().err)
    assert "--init no-such-run" in line
    # The same for a plain run with --init.
    assert bench.run("--loss", "ntxent", "--seed", "4", "--init", "no-such-run") == 2
    assert "--init no-such-run" in error_line(capsys.readouterr().err)


def test_init_of_a_plain_run_is_not_ignored(bench: Bench, seeds: dict[int, str]) -> None:
    (result,) = bench.run_new("--loss", "ntxent", "--seed", "3", "--init", seeds[1], *FROZEN)
    assert result["stage"]["stage"] == 1 and result["stage"]["init"] == seeds[1]
    assert same_params(bench.params(result["run_id"]), bench.params(seeds[1]))
