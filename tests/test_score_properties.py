"""Property tests of the run-file parsers: any valid file scores as a direct count says; bad ones raise.

Examples stay small (at most 12 files x 3 captions) and their number is the profile's of
tests/conftest.py (40 in test-fast, 400 in `make test`).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bench.errors import DataError  # noqa: E402
from bench.results.run_files import read_dcase, read_trec, trec_id  # noqa: E402
from bench.results.score_lists import Truth, list_depth, score_lists  # noqa: E402
from tests.conftest import torch_threads  # noqa: E402


@st.composite
def runs(draw: st.DrawFn) -> tuple[Truth, np.ndarray, np.ndarray, list[int]]:
    """A split, integer scores (so ties are common), each caption's listed files (or none), a line order."""
    n_audios = draw(st.integers(1, 12))
    per = draw(st.lists(st.integers(1, 3), min_size=n_audios, max_size=n_audios))
    aoc = np.repeat(np.arange(n_audios), per)
    ids = np.asarray([f"f {i}%.wav" if i % 2 else f"file{i}.wav" for i in range(n_audios)])  # spaces and '%'
    truth = Truth("toy", ids, np.asarray([f"c{i}" for i in range(aoc.size)]), aoc, "fp")
    scores = np.asarray(draw(st.lists(st.integers(0, 4), min_size=aoc.size * n_audios,
                                      max_size=aoc.size * n_audios)), dtype=np.float64).reshape(aoc.size, n_audios)
    depth = list_depth(truth, "t2a")
    listed = np.zeros_like(scores, dtype=bool)
    for c in range(aoc.size):
        if draw(st.booleans()) or c == 0:  # keep at least one query; the others may be missing
            k = draw(st.integers(depth, n_audios))
            listed[c, np.argsort(-scores[c], kind="stable")[:k]] = True
    order = draw(st.permutations(range(int(listed.sum()))))
    return truth, scores, listed, list(order)


def _write(path: Path, truth: Truth, scores: np.ndarray, listed: np.ndarray, order: list[int]) -> None:
    lines = []
    for c in range(scores.shape[0]):
        docs = [a for a in np.argsort(-scores[c], kind="stable") if listed[c, a]]
        cid, names = trec_id(truth.caption_ids[c:c + 1])[0], trec_id(truth.audio_ids)
        lines += [f"{cid} Q0 {names[a]} {r + 1} {scores[c, a]} tag" for r, a in enumerate(docs)]
    path.write_text("\n".join(lines[i] for i in order) + "\n")


def _expected(truth: Truth, scores: np.ndarray, listed: np.ndarray) -> np.ndarray:
    out = []
    for c, a in enumerate(truth.audio_of_caption):
        if not listed[c].any():
            out.append(truth.n_audios + 1)  # a missing query: a miss
        elif not listed[c, a]:
            out.append(truth.n_audios)  # unlisted: below every listed file
        else:
            mine, others = scores[c, a], listed[c] & (np.arange(truth.n_audios) != a)
            out.append(1 + int(((scores[c] > mine) & others).sum()) + int(((scores[c] == mine) & others).sum()))
    return np.asarray(out)


@given(runs())
def test_trec_ranks_are_the_pessimistic_count_in_any_line_order(tmp_path_factory, run) -> None:
    truth, scores, listed, order = run
    path = tmp_path_factory.mktemp("trec") / "run.trec"
    _write(path, truth, scores, listed, order)
    with torch_threads(1):
        scored = score_lists(read_trec(path, truth)["t2a"], truth, str(path), None)
    assert scored.ranks[0].tolist() == _expected(truth, scores, listed).tolist()
    assert scored.missing == int((~listed.any(axis=1)).sum())


@given(runs(), st.data())
def test_a_repeated_line_is_a_duplicate_document(tmp_path_factory, run, data) -> None:
    truth, scores, listed, order = run
    path = tmp_path_factory.mktemp("trec") / "run.trec"
    _write(path, truth, scores, listed, order)
    lines = path.read_text().splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    path.write_text("\n".join(lines + [lines[i]]) + "\n")
    with pytest.raises(DataError, match=f"line {len(lines) + 1}: duplicate document"):
        score_lists(read_trec(path, truth)["t2a"], truth, str(path), None)


@given(runs())
def test_dcase_positions_are_ranks(tmp_path_factory, run) -> None:
    truth, scores, listed, _ = run
    depth = list_depth(truth, "t2a")
    rows = []
    expected = []
    for c in range(scores.shape[0]):
        if not listed[c].any():
            expected.append(truth.n_audios + 1)
            continue
        top = list(np.argsort(-scores[c], kind="stable")[:depth])
        rows.append(",".join([truth.caption_ids[c], *truth.audio_ids[top]]))
        a = truth.audio_of_caption[c]
        expected.append(top.index(a) + 1 if a in top else truth.n_audios)
    path = tmp_path_factory.mktemp("dcase") / "sub.csv"
    path.write_text("\n".join(rows) + "\n")
    with torch_threads(1):
        scored = score_lists(read_dcase(path, truth)["t2a"], truth, str(path), None)
    assert scored.ranks[0].tolist() == expected


@given(st.lists(st.text(min_size=1, max_size=12).filter(lambda s: "\x00" not in s), min_size=1, max_size=8))
def test_trec_ids_survive_encoding(ids) -> None:
    encoded = trec_id(np.asarray(ids, dtype=object).astype(str))
    assert all(len(e.split()) == 1 and e == e.strip() for e in encoded)
    assert [unquote(e) for e in encoded] == [str(np.str_(i)) for i in ids]
