"""`bench score` and `bench export`: four formats, identical metrics, round trips, one line per bad file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.cli.main import main
from bench.core.registry import get_registry
from bench.results.score_lists import Truth
from bench.runs.score_run import load_truth
from tests.conftest import drop_console_handlers, torch_threads

TINY = {"synthetic": {"n_train": 4, "n_val": 4, "n_test": 14}}
SET = ["--set", "synthetic.n_train=4", "--set", "synthetic.n_val=4", "--set", "synthetic.n_test=14"]
RANK_KEYS = ("mean_rank", "median_rank")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("score-cache")  # the tiny synthetic split is generated once


@pytest.fixture()
def truth(cache: Path, monkeypatch: pytest.MonkeyPatch) -> Truth:
    monkeypatch.setenv("BENCH_CACHE", str(cache))
    yield load_truth("synthetic", TINY, get_registry())[0]
    drop_console_handlers()


def system(truth: Truth, seed: int = 0, noise: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Random embeddings of one system on the split: no two scores tie."""
    rng = np.random.default_rng(seed)
    audio = rng.standard_normal((truth.n_audios, 8)).astype(np.float32)
    text = (audio[truth.audio_of_caption] + noise * rng.standard_normal((truth.n_captions, 8))).astype(np.float32)
    return audio, text


def write_embeddings(path: Path, truth: Truth, seed: int = 0) -> Path:
    audio, text = system(truth, seed)
    np.savez(path, audio=audio, text=text, audio_ids=truth.audio_ids, caption_ids=truth.caption_ids)
    return path


def score(tmp_path: Path, file: Path, *extra: str) -> tuple[int, str, str]:
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    with torch_threads(1), redirect_stdout(out), redirect_stderr(err):
        code = main(["score", str(file), "--dataset", "synthetic", *SET, "--results-dir", str(tmp_path / "results"),
                     "--runs-dir", str(tmp_path / "runs"), *extra])
    return code, out.getvalue(), err.getvalue()


def latest(tmp_path: Path) -> dict:
    paths = sorted((tmp_path / "results").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    return json.loads(paths[-1].read_text())


def export(tmp_path: Path, target: str, fmt: str, output: Path, *extra: str) -> None:
    with torch_threads(1):
        assert main(["export", target, "--format", fmt, "--output", str(output), *extra]) == 0


def test_one_system_through_all_four_formats_and_back(truth: Truth, tmp_path: Path, capsys) -> None:
    from bench.results.verify import verify

    assert score(tmp_path, write_embeddings(tmp_path / "system.npz", truth))[0] == 0
    original = latest(tmp_path)
    assert original["kind"] == "score" and original["score"]["format"] == "npz-embeddings"
    assert set(original["metrics"]["t2a"]) >= set(RANK_KEYS)  # embeddings give every metric
    json_path = tmp_path / "results" / f"{original['run_id']}.json"
    assert verify(json_path).checked == ("embeddings", "chance", "sidecar")
    exported = {"trec": tmp_path / "sys.trec", "dcase": tmp_path / "sys.csv", "npz": tmp_path / "sys-again.npz",
                "npz-scores": tmp_path / "sys.scores.npz"}
    for fmt, path in exported.items():
        export(tmp_path, str(json_path), fmt, path)
    formats = {}
    for fmt, path in exported.items():  # --force: the .npz export is byte for byte the file scored first
        code, out, err = score(tmp_path, path, "--force")
        assert code == 0, err
        result = latest(tmp_path)
        formats[fmt] = result
        assert result["score"]["format"] == {"npz": "npz-embeddings"}.get(fmt, fmt)  # detected from content
        assert verify(tmp_path / "results" / f"{result['run_id']}.json").ok
    # Full rankings (TREC of both directions, embeddings, score matrix): every metric, both directions.
    for fmt in ("trec", "npz", "npz-scores"):
        assert formats[fmt]["metrics"] == original["metrics"], fmt
    # DCASE: t2a only, the top 10: R@k and mAP@10 identical, the ranks unknown and said so.
    dcase = formats["dcase"]
    assert dcase["score"]["directions"] == ["t2a"] and "a2t" not in dcase["metrics"]
    assert dcase["metrics"]["t2a"] == {k: v for k, v in original["metrics"]["t2a"].items() if k not in RANK_KEYS}
    assert dcase["score"]["unknown"] == {"t2a": list(RANK_KEYS)}
    # compare works across formats, on the metrics both hold
    capsys.readouterr()
    ids = [str(tmp_path / "results" / f"{r['run_id']}.json") for r in (original, dcase)]
    assert main(["compare", *ids, "--json", "--permutations", "1000", "--bootstrap", "1000"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {(r["direction"], r["metric"]) for r in report["comparisons"]} == {
        ("t2a", "R@1"), ("t2a", "R@5"), ("t2a", "R@10"), ("t2a", "mAP@10")}
    assert all(r["difference"] == 0 for r in report["comparisons"])
    assert report["systems"][0]["name"] != report["systems"][1]["name"]
    # inspect: the scored embeddings list what they retrieve; the DCASE score its worst ranks from the sidecar
    assert main(["inspect", ids[0], "-n", "3"]) == 0
    assert "top retrieved" in capsys.readouterr().out
    assert main(["inspect", ids[1], "-n", "3", "--vs", ids[0]]) == 0
    shown = capsys.readouterr().out
    assert "per-query sidecar" in shown and "improved most against" in shown


def test_truncated_trec_and_a_leaderboard_with_scored_files(truth: Truth, tmp_path: Path) -> None:
    from bench.leaderboard.site import build_site
    from bench.leaderboard.tables import render_dir

    assert score(tmp_path, write_embeddings(tmp_path / "system.npz", truth))[0] == 0
    original = latest(tmp_path)
    json_path = tmp_path / "results" / f"{original['run_id']}.json"
    export(tmp_path, str(json_path), "trec", tmp_path / "top10.trec", "--depth", "10", "--direction", "t2a")
    assert len((tmp_path / "top10.trec").read_text().splitlines()) == truth.n_captions * 10
    code, out, _ = score(tmp_path, tmp_path / "top10.trec", "--name", "top ten")
    assert code == 0 and "mean_rank, median_rank: unknown" in out
    top10 = latest(tmp_path)
    assert top10["score"]["list_depth"] == {"t2a": 10} and top10["audio_encoder"]["name"] == "top ten"
    assert top10["metrics"]["t2a"] == {k: v for k, v in original["metrics"]["t2a"].items() if k not in RANK_KEYS}
    markdown, results, unreadable = render_dir(tmp_path / "results")
    assert not unreadable and len(results) == 2
    row = next(line for line in markdown.splitlines() if line.startswith("| top ten"))
    assert "scored trec" in row and "scored file" in row
    files, warnings = build_site(tmp_path / "results")
    assert not warnings and any("top ten" in text for text in files.values())
    assert any("bench score top10.trec --dataset synthetic" in text for text in files.values())


def test_template_lists_the_caption_ids(truth: Truth, tmp_path: Path, capsys) -> None:
    assert main(["score", "--template", "trec", "--dataset", "synthetic", *SET]) == 0
    out = capsys.readouterr().out
    assert all(f"# {cid}\t" in out for cid in truth.caption_ids)
    assert "QID Q0 DOCID RANK SCORE TAG" in out and f"{truth.audio_ids[0]}#0" in out


# ----------------------------------------------------------------------------- bad files: one line each


def _trec_lines(truth: Truth, depth: int = 10) -> list[str]:
    audio, text = system(truth)
    scores = text @ audio.T
    lines = []
    for c, cid in enumerate(truth.caption_ids):
        order = np.argsort(-scores[c], kind="stable")[:depth]
        lines += [f"{cid} Q0 {truth.audio_ids[a]} {r + 1} {scores[c, a]:.6f} sys" for r, a in enumerate(order)]
    return lines


def _one_line_error(tmp_path: Path, path: Path, *needles: str, extra: tuple[str, ...] = ()) -> str:
    code, out, err = score(tmp_path, path, *extra)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    assert not list((tmp_path / "results").glob("*.json"))  # nothing half-written
    return err


def test_unknown_file_and_unknown_caption(truth: Truth, tmp_path: Path) -> None:
    lines = _trec_lines(truth)
    bad = tmp_path / "bad.trec"
    fields = lines[5].split()
    fields[2] = "nope.wav"
    bad.write_text("\n".join(lines[:5] + [" ".join(fields)] + lines[6:]) + "\n")
    _one_line_error(tmp_path, bad, "line 6", "'nope.wav' is not a file name")
    bad.write_text("\n".join(lines[:3] + ["nobody#0" + lines[3][lines[3].index(" "):]] + lines[4:]) + "\n")
    _one_line_error(tmp_path, bad, "line 4", "'nobody#0'", "--template trec")
    csv = tmp_path / "bad.csv"
    csv.write_text("caption," + ",".join(f"fname_{k}" for k in range(1, 11)) + "\n"
                   + "a caption nobody wrote," + ",".join(truth.audio_ids[:10]) + "\n")
    _one_line_error(tmp_path, csv, "data row 1", "neither a caption id nor a caption")


def test_duplicate_query_and_duplicate_document(truth: Truth, tmp_path: Path) -> None:
    header = "caption," + ",".join(f"fname_{k}" for k in range(1, 11))
    row = f"{truth.caption_ids[0]}," + ",".join(truth.audio_ids[:10])
    csv = tmp_path / "dup.csv"
    csv.write_text("\n".join([header, row, row]) + "\n")
    _one_line_error(tmp_path, csv, "duplicate query", "data row 2")
    lines = _trec_lines(truth)
    trec = tmp_path / "dup.trec"
    trec.write_text("\n".join(lines[:10] + [lines[9].replace(" 10 ", " 11 ")] + lines[10:]) + "\n")
    _one_line_error(tmp_path, trec, "line 11", "duplicate document", "also line 10")
    csv.write_text("\n".join([header, f"{truth.caption_ids[0]}," + ",".join([truth.audio_ids[0]] * 10)]) + "\n")
    _one_line_error(tmp_path, csv, "line 2", "listed twice")


def test_ranks_contradicting_scores(truth: Truth, tmp_path: Path) -> None:
    lines = _trec_lines(truth)
    qid, q0, doc, rank, value, tag = lines[1].split()
    lines[1] = " ".join([qid, q0, doc, rank, "99.0", tag])  # rank 2 scores above rank 1
    trec = tmp_path / "order.trec"
    trec.write_text("\n".join(lines) + "\n")
    _one_line_error(tmp_path, trec, "line 2", "ranks must follow scores")
    shuffled = [lines[0], lines[2], lines[1]] + lines[3:]  # out of file order: the sorting path finds it too
    trec.write_text("\n".join(shuffled) + "\n")
    _one_line_error(tmp_path, trec, "line 3", "ranks must follow scores")


def test_short_list_and_missing_query(truth: Truth, tmp_path: Path) -> None:
    lines = _trec_lines(truth)
    trec = tmp_path / "short.trec"
    trec.write_text("\n".join(lines[:9] + lines[10:]) + "\n")  # the first caption lists 9 files
    _one_line_error(tmp_path, trec, "line 1", "lists 9 document(s)", "at least 10")
    csv = tmp_path / "short.csv"
    csv.write_text(f"{truth.caption_ids[0]}," + ",".join(truth.audio_ids[:7]) + ",,,\n")
    _one_line_error(tmp_path, csv, "line 1", "7 file name(s)")
    trec.write_text("\n".join(lines[10:]) + "\n")  # the first caption is missing: a counted miss
    code, out, err = score(tmp_path, trec)
    assert code == 0, err
    assert f"1 of {truth.n_captions} t2a queries are missing from short.trec: counted as misses" in out
    result = latest(tmp_path)
    assert result["score"]["missing"] == {"t2a": 1} and result["score"]["n_queries"] == {"t2a": truth.n_captions}
    from bench.evaluation.per_query import load_for_result

    ranks = load_for_result(result, tmp_path / "results" / f"{result['run_id']}.json").t2a_rank
    assert ranks[0] == truth.n_audios + 1 and ranks.size == truth.n_captions  # kept, as a miss


def test_wrong_shaped_embeddings_and_nan(truth: Truth, tmp_path: Path) -> None:
    audio, text = system(truth)
    npz = tmp_path / "bad.npz"
    np.savez(npz, audio=audio[:, :4], text=text, audio_ids=truth.audio_ids, caption_ids=truth.caption_ids)
    _one_line_error(tmp_path, npz, "'audio' is 4-d but 'text' is 8-d")
    np.savez(npz, audio=audio, text=text, audio_ids=truth.audio_ids[:-1], caption_ids=truth.caption_ids)
    _one_line_error(tmp_path, npz, f"{truth.n_audios - 1} audio_ids for {truth.n_audios} rows")
    np.savez(npz, audio=audio[0], text=text, audio_ids=truth.audio_ids, caption_ids=truth.caption_ids)
    _one_line_error(tmp_path, npz, "expected a 2-D float array")
    text[3, 1] = np.nan
    np.savez(npz, audio=audio, text=text, audio_ids=truth.audio_ids, caption_ids=truth.caption_ids)
    _one_line_error(tmp_path, npz, "NaN", f"row 3 ('{truth.caption_ids[3]}')")
    trec = tmp_path / "nan.trec"
    lines = _trec_lines(truth)
    trec.write_text("\n".join(lines[:2] + [" ".join(lines[2].split()[:4] + ["nan", "sys"])] + lines[3:]) + "\n")
    _one_line_error(tmp_path, trec, "line 3", "not a finite number")


def test_malformed_trec_line_is_one_line(truth: Truth, tmp_path: Path) -> None:
    trec = tmp_path / "broken.trec"
    trec.write_text("\n".join(_trec_lines(truth)[:20] + ["just three fields"]) + "\n")
    _one_line_error(tmp_path, trec, "not a TREC run", extra=("--format", "trec"))


def test_export_needs_embeddings(truth: Truth, tmp_path: Path) -> None:
    lines = _trec_lines(truth)
    trec = tmp_path / "run.trec"
    trec.write_text("\n".join(lines) + "\n")
    assert score(tmp_path, trec)[0] == 0
    result = latest(tmp_path)
    code = main(["export", str(tmp_path / "results" / f"{result['run_id']}.json"), "--format", "trec"])
    assert code == 2


@pytest.mark.parametrize("fmt", ["trec", "npz-scores", "npz"])
def test_export_of_a_trained_run_by_run_id_scores_back_to_its_metrics(tmp_path: Path, make_result, fmt: str) -> None:
    from synthetic_runs import make_run

    from bench.evaluation.per_query import read_embeddings, reduce
    from bench.results.run_files import read_trec
    from bench.results.score_arrays import score_embeddings, score_matrix
    from bench.results.score_lists import outcomes, score_lists

    path = make_run(tmp_path, "trained-run", make_result())
    claimed = json.loads(path.read_text())["metrics"]
    out = tmp_path / f"export.{fmt}"
    export(tmp_path, "trained-run", fmt, out, "--results-dir", str(tmp_path / "results"))
    e = read_embeddings(tmp_path / "runs" / "trained-run" / "test_embeddings.npz")
    truth = Truth("toy", e["audio_ids"].astype(str), np.asarray([""] * e["text"].shape[0]),
                  e["audio_of_caption"].astype(np.int64), "fp-test")
    with torch_threads(1):
        if fmt == "trec":
            lists = read_trec(out, truth)
            scored = {d: score_lists(lists[d], truth, str(out), 2048) for d in ("t2a", "a2t")}
        elif fmt == "npz":
            scored = score_embeddings(out, truth, 2048)[0]
        else:
            scored = score_matrix(out, truth, 2048)
    assert reduce(outcomes(truth, scored)) == claimed


def test_format_detection(tmp_path: Path) -> None:
    from bench.errors import DataError
    from bench.results.score_files import detect_format

    cases = {"a.trec": "cap#0 Q0 f.wav 1 0.5 tag\n", "b.csv": "a dog barks in a b c,f.wav,g.wav\n",
             "c.csv": "caption,fname_1,fname_2\n", "d.trec": "cap#0\tQ0\tf.wav\t1\t-2e-3\ttag\n"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    assert {name: detect_format(tmp_path / name) for name in cases} == {
        "a.trec": "trec", "b.csv": "dcase", "c.csv": "dcase", "d.trec": "trec"}
    np.savez(tmp_path / "s.npz", scores=np.zeros((2, 2)))
    np.savez(tmp_path / "e.npz", audio=np.zeros((2, 2)), text=np.zeros((2, 2)))
    np.savez(tmp_path / "x.npz", other=np.zeros(2))
    assert detect_format(tmp_path / "s.npz") == "npz-scores" and detect_format(tmp_path / "e.npz") == "npz-embeddings"
    with pytest.raises(DataError, match="neither 'scores' nor 'audio' and 'text'"):
        detect_format(tmp_path / "x.npz")
    (tmp_path / "y.txt").write_text("hello world\n")
    with pytest.raises(DataError, match="pass --format"):
        detect_format(tmp_path / "y.txt")
