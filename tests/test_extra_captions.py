"""Extra training captions for any dataset (``--set NAME.extra_captions=FILE.csv``, bench.data.extra_captions).

The captions of the file are added to the training split and nowhere else; bad rows are one line
naming the file and the row; the file's sha256 goes into the combination id and its hash and
caption count into the result.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.core.config import build_grid, config_from_json, config_to_json, dataset_spec
from bench.core.registry import get_registry
from bench.data.datasets import build_dataset
from bench.errors import DataError

TINY = {"n_train": "8", "n_val": "4", "n_test": "4"}
TINY_SETS = [f"--set=synthetic.{k}={v}" for k, v in TINY.items()]


def _dataset(extra: Path | None = None):
    options = dict(TINY, **({"extra_captions": str(extra)} if extra else {}))
    return build_dataset(dataset_spec(get_registry(), "synthetic", {"synthetic": options}), get_registry())


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _names(dataset, split: str) -> list[str]:
    return [item.audio_id for item in dataset.split(split)]


def test_the_files_captions_are_added_to_training_only(isolated_cache, tmp_path):
    plain = _dataset()
    first, second = _names(plain, "train")[:2]
    csv = _write(tmp_path / "extra.csv", f'file_name,caption\n{first},a dog barks twice\n'
                                         f'{second},"rain, then thunder"\n{first},  a second one  \n')
    extra = _dataset(csv)
    before = {item.audio_id: item.captions for item in plain.split("train")}
    after = {item.audio_id: item.captions for item in extra.split("train")}
    assert list(after) == list(before)
    added = {k: after[k][len(before[k]):] for k in after if after[k] != before[k]}
    assert added == {first: ("a dog barks twice", "a second one"), second: ("rain, then thunder",)}
    assert all(after[k][:len(before[k])] == before[k] for k in after)
    for split in ("val", "test"):
        assert extra.split(split) == plain.split(split)
    assert extra.extra_captions_info == {"file": str(csv.resolve()), "n_captions": 3, "n_audios": 2,
                                         "sha256": hashlib.sha256(csv.read_bytes()).hexdigest()}


def test_the_combination_id_changes_with_the_file(isolated_cache, tmp_path):
    from bench.runs.run import combination_id

    def config(*sets: str):
        from bench.core.config import parse_set_options

        options = parse_set_options([*(s.removeprefix("--set=") for s in TINY_SETS), *sets])
        return build_grid(datasets=["synthetic"], encoders=["cnn"], text_encoders=["minilm"], losses=["ntxent"],
                          seeds=[0], set_options=options, train_overrides={}, registry=get_registry())[0]

    csv = _write(tmp_path / "extra.csv", "file_name,caption\n")
    plain, empty = config(), config(f"synthetic.extra_captions={csv}")
    assert "extra_captions" not in json.dumps(plain.dataset.to_json())  # runs without the option keep their ids
    assert empty.dataset.options["extra_captions_sha256"] == hashlib.sha256(csv.read_bytes()).hexdigest()
    _write(csv, "file_name,caption\nx.wav,a caption\n")
    changed = config(f"synthetic.extra_captions={csv}")
    assert len({combination_id(plain), combination_id(empty), combination_id(changed)}) == 3
    assert combination_id(config_from_json(config_to_json(changed))) == combination_id(changed)
    # A run configured with one content refuses to build from another (e.g. resumed after an edit).
    _write(csv, "file_name,caption\n")
    with pytest.raises(DataError, match="the file changed"):
        build_dataset(changed.dataset, get_registry())


@pytest.mark.parametrize("body, expected", [
    ("{test},a caption for a test file\n", "row 3: '{test}' is in the test split of synthetic; extra captions "
                                           "may only be added to training recordings"),
    ("no_such_file.wav,a caption\n", "row 3: unknown file_name 'no_such_file.wav': not a recording of "
                                     "synthetic's training split"),
    ('{train},"an open quote\n', "row 3: malformed CSV"),
    ("{train},one,two\n", "row 3: 3 fields, the header has 2"),
    ("{train},\n", "row 3: empty caption"),
])
def test_bad_rows_are_one_line_naming_file_and_row(isolated_cache, tmp_path, capsys, body, expected):
    plain = _dataset()
    names = {"train": _names(plain, "train")[1], "test": _names(plain, "test")[0]}
    csv = _write(tmp_path / "extra.csv", f"file_name,caption\n{names['train']},fine\n" + body.format(**names))
    assert main(["validate", "--dataset", "synthetic", *TINY_SETS, f"--set=synthetic.extra_captions={csv}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert str(csv.resolve()) in err and expected.format(**names) in err, err


def test_missing_columns_and_missing_file_are_one_line(isolated_cache, tmp_path, capsys):
    csv = _write(tmp_path / "extra.csv", "name,text\na.wav,b\n")
    assert main(["validate", "--dataset", "synthetic", *TINY_SETS, f"--set=synthetic.extra_captions={csv}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "row 1: missing column(s) file_name, caption" in err, err
    missing = tmp_path / "nope.csv"
    assert main(["run", *TINY_SETS, f"--set=synthetic.extra_captions={missing}", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err and "file_name,caption" in err, err


@pytest.mark.slow
def test_an_empty_file_changes_no_evaluation_number(isolated_cache, tmp_path):
    csv = _write(tmp_path / "empty.csv", "file_name,caption\n")
    common = [*TINY_SETS, "--set", "cnn.freeze=true", "--epochs", "1", "--batch-size", "8", "--num-workers", "0",
              "--device", "cpu", "--no-leaderboard", "--runs-dir", str(tmp_path / "runs")]
    assert main(["run", *common, "--results-dir", str(tmp_path / "plain")]) == 0
    assert main(["run", *common, "--results-dir", str(tmp_path / "extra"), "--set",
                 f"synthetic.extra_captions={csv}"]) == 0
    (plain,) = [json.loads(p.read_text()) for p in (tmp_path / "plain").glob("*.json")]
    (extra,) = [json.loads(p.read_text()) for p in (tmp_path / "extra").glob("*.json")]
    assert extra["combination"] != plain["combination"]
    # A published result names no local path: the CSV is named by its file name (docs/result-schema.md).
    assert extra["dataset"]["extra_captions"] == {"synthetic": {
        "file": "…/" + csv.name, "sha256": hashlib.sha256(csv.read_bytes()).hexdigest(), "n_captions": 0,
        "n_audios": 0}}
    assert "extra_captions" not in plain["dataset"]
    for key in ("metrics", "best_val"):
        assert extra[key] == plain[key]
    assert extra["dataset"]["splits"] == plain["dataset"]["splits"]
