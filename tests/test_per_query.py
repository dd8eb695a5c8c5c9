"""Per-query outcomes: they reduce to bench.evaluation.metrics' numbers exactly; the sidecar is safe to trust."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.errors import ConfigError, DataError
from bench.evaluation.metrics import audio_to_text, retrieval_metrics, text_to_audio
from bench.evaluation.per_query import (
    Outcomes,
    align,
    load_for_result,
    outcomes_from_embeddings,
    outcomes_from_npz,
    outcomes_from_scores,
    read_sidecar,
    reduce,
    sidecar_entry,
    sidecar_path,
    write_sidecar,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def split(n_audios: int = 30, seed: int = 0, max_caps: int = 13) -> np.ndarray:
    """audio_of_caption with 1..max_caps captions per audio (some > 10: the AP@10 cut-off matters)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, max_caps + 1, n_audios)
    return np.repeat(np.arange(n_audios), counts)


def embeddings(n_audios: int = 30, dim: int = 8, seed: int = 0):
    aoc = split(n_audios, seed)
    rng = np.random.default_rng(seed + 1)
    audio = rng.standard_normal((n_audios, dim)).astype(np.float32)
    text = (audio[aoc] + 1.5 * rng.standard_normal((aoc.size, dim))).astype(np.float32)
    return audio, text, aoc


@pytest.mark.parametrize("chunk", [None, 1, 13])
def test_reduce_equals_retrieval_metrics_exactly(chunk):
    audio, text, aoc = embeddings()
    outcomes = outcomes_from_embeddings(audio, text, aoc, chunk_size=chunk)
    assert reduce(outcomes) == retrieval_metrics(audio, text, aoc, chunk_size=chunk)


@pytest.mark.parametrize("kind", ["random", "ties", "constant"])
def test_reduce_equals_full_matrix_metrics(kind):
    aoc = split(25, seed=3)
    rng = np.random.default_rng(4)
    shape = (aoc.size, 25)
    if kind == "random":
        t2a = rng.standard_normal(shape)
    elif kind == "ties":
        t2a = rng.integers(0, 3, shape).astype(np.float64)  # three score levels: ties everywhere
    else:
        t2a = np.zeros(shape)
    a2t = np.ascontiguousarray(t2a.T)
    outcomes = outcomes_from_scores(t2a, a2t, aoc)
    assert reduce(outcomes) == {"t2a": text_to_audio(t2a, aoc), "a2t": audio_to_text(a2t, aoc)}
    if kind == "constant":
        assert set(outcomes.t2a_rank.tolist()) == {25}  # pessimistic ties: the worst rank


def test_caption_keys_use_audio_ids_and_caption_position():
    aoc = np.array([0, 0, 1, 0, 1])
    outcomes = outcomes_from_scores(np.zeros((5, 2)), np.zeros((2, 5)), aoc, audio_ids=["x", "y"])
    assert outcomes.caption_keys().tolist() == ["x#0", "x#1", "y#0", "x#2", "y#1"]


def test_duplicate_audio_ids_are_refused():
    with pytest.raises(DataError, match="not unique"):
        outcomes_from_scores(np.zeros((2, 2)), np.zeros((2, 2)), [0, 1], audio_ids=["a", "a"])


@pytest.fixture
def outcomes() -> Outcomes:
    audio, text, aoc = embeddings(20)
    return outcomes_from_embeddings(audio, text, aoc, [f"id{i}" for i in range(20)], "fp-1")


def test_sidecar_round_trip_and_hash(tmp_path, outcomes):
    result_path = tmp_path / "run-a.json"
    path = sidecar_path(result_path)
    assert path.name == "run-a.per_query.npz"
    sha = write_sidecar(path, outcomes)
    back = read_sidecar(path, sha)
    assert reduce(back) == reduce(outcomes)
    assert back.fingerprint == "fp-1" and back.caption_keys().tolist() == outcomes.caption_keys().tolist()
    assert not list(tmp_path.glob(".*.tmp"))  # atomic: no temporary left behind
    loaded = load_for_result({"per_query": sidecar_entry(path, sha)}, result_path)
    np.testing.assert_array_equal(loaded.t2a_rank, outcomes.t2a_rank)


def _one_line_naming(exc: pytest.ExceptionInfo, path) -> None:
    message = str(exc.value)
    assert "\n" not in message and str(path) in message


def test_missing_truncated_and_tampered_sidecars_give_one_line(tmp_path, outcomes):
    path = tmp_path / "r.per_query.npz"
    with pytest.raises(DataError, match="missing") as exc:
        read_sidecar(path)
    _one_line_naming(exc, path)
    sha = write_sidecar(path, outcomes)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="sha256") as exc:
        read_sidecar(path, sha)
    _one_line_naming(exc, path)
    with pytest.raises(DataError, match="truncated") as exc:
        read_sidecar(path)  # no hash to check: the truncation itself is caught
    _one_line_naming(exc, path)
    np.savez(path, something=np.zeros(3))
    with pytest.raises(DataError, match="not a bench per-query sidecar") as exc:
        read_sidecar(path)
    _one_line_naming(exc, path)


def test_result_without_sidecar_field(tmp_path):
    with pytest.raises(DataError, match="no per-query sidecar"):
        load_for_result({}, tmp_path / "r.json")


def test_align_by_key_not_position(outcomes):
    rng = np.random.default_rng(0)
    audio_order = rng.permutation(outcomes.n_audios)
    caption_order = rng.permutation(outcomes.n_captions)
    shuffled = outcomes.take(audio_order, caption_order)
    assert shuffled.caption_keys().tolist() != outcomes.caption_keys().tolist()
    _, back = align(outcomes, shuffled)
    np.testing.assert_array_equal(back.t2a_rank, outcomes.t2a_rank)
    np.testing.assert_array_equal(back.a2t_ap10, outcomes.a2t_ap10)
    np.testing.assert_array_equal(back.audio_of_caption, outcomes.audio_of_caption)
    assert back.caption_keys().tolist() == outcomes.caption_keys().tolist()


def test_align_refuses_different_splits(outcomes):
    other = Outcomes(outcomes.t2a_rank, outcomes.a2t_first, outcomes.a2t_ap10, outcomes.audio_ids,
                     outcomes.audio_of_caption, outcomes.caption_slot, "fp-2")
    with pytest.raises(ConfigError, match="different test splits") as exc:
        align(outcomes, other)
    assert "\n" not in str(exc.value)
    renamed = Outcomes(outcomes.t2a_rank, outcomes.a2t_first, outcomes.a2t_ap10,
                       np.char.add(outcomes.audio_ids, "x"), outcomes.audio_of_caption, outcomes.caption_slot, "")
    with pytest.raises(ConfigError, match="different queries"):
        align(outcomes, renamed)


def test_outcomes_from_npz_reads_save_embeddings_layout(tmp_path):
    audio, text, aoc = embeddings(12)
    path = tmp_path / "test_embeddings.npz"
    np.savez(path, audio=audio, text=text, audio_of_caption=aoc,
             audio_ids=np.asarray([f"a{i}" for i in range(12)]), fingerprint=np.asarray("fp"))
    o = outcomes_from_npz(path)
    assert o.fingerprint == "fp" and o.audio_ids[3] == "a3"
    assert reduce(o) == retrieval_metrics(torch.from_numpy(audio), torch.from_numpy(text), aoc)
    path.write_bytes(b"junk")
    with pytest.raises(DataError, match="unreadable test embeddings"):
        outcomes_from_npz(path)
