"""Property: the caption CSV reader never raises anything but bench's own errors (issue 24).

Arbitrary bytes, and CSV-like text built from the characters that break parsers (quotes, commas,
CR/LF, a BOM, bytes that are not UTF-8), go through ``read_csv`` under both ``on_error`` policies
and through the ``csv`` dataset's ``split``. A :class:`bench.errors.BenchError` (one line naming the
file) is fine; any other exception is a bug.
"""

from __future__ import annotations

from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bench.errors import BenchError  # noqa: E402
from bench_plugins.datasets._common import read_csv  # noqa: E402
from bench_plugins.datasets.csv_captions import CsvCaptionsDataset  # noqa: E402

PIECES = [b"a.wav", b"b.wav", b"a dog", b"train", b"val", b"test", b",", b",", b'"', b'""', b"\n", b"\r\n", b"\r",
          b" ", b"\t", b"\xef\xbb\xbf", b"\xff", b"\xc3", b"\xc3\xa9", b"\x00", b"file_name,caption,split\n"]
HEADER = b"file_name,caption,split\n"


def csv_like() -> st.SearchStrategy[bytes]:
    body = st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join)
    return st.one_of(st.binary(max_size=200), body, body.map(lambda b: HEADER + b))


def _check(path: Path, on_error: str) -> None:
    try:
        rows = list(read_csv(path, ("file_name", "caption", "split"), on_error=on_error))
    except BenchError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc).strip()
        return
    for line, row, problem in rows:
        assert isinstance(line, int) and line >= 2
        assert (row is None) != (problem is None)
        if row is not None:
            assert set(row) >= {"file_name", "caption", "split"} and all(isinstance(v, str) for v in row.values())


@given(csv_like(), st.sampled_from(["raise", "skip"]))
def test_read_csv_raises_only_bench_errors(tmp_path_factory, data, on_error) -> None:
    path = tmp_path_factory.mktemp("csv") / "captions.csv"
    path.write_bytes(data)
    _check(path, on_error)


@given(csv_like(), st.sampled_from(["raise", "skip"]))
def test_csv_dataset_raises_only_bench_errors(tmp_path_factory, data, on_error) -> None:
    base = tmp_path_factory.mktemp("ds")
    (base / "captions.csv").write_bytes(data)
    try:
        dataset = CsvCaptionsDataset(base, base / "captions.csv", on_error=on_error)
        for split in ("train", "val", "test"):
            items = dataset.split(split)
            assert all(item.captions and all(c == c.strip() for c in item.captions) for item in items)
    except BenchError:
        pass
